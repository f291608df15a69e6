"""CrossViT: Cross-Attention Multi-Scale Vision Transformer (Chen, Fan & Panda, ICCV 2021).

arXiv:2103.14899; official code: github.com/IBM/CrossViT (``models/crossvit.py``). Two (or more)
ViT branches look at the same image at different patch sizes: the small-patch branch S (patch 12
at 240 px) and the large-patch branch L (patch 16 at 224 px; the input is bicubically resized per
branch). ``K`` multi-scale blocks each run ``d_s`` / ``d_l`` ordinary ViT blocks inside every
branch and then fuse the branches with *CLS-token cross-attention*: the CLS token of one branch is
projected to the other branch's width, used as the **only query** over that branch's patch tokens
(plus itself), projected back and put in front of its own patch tokens again. One query per branch
makes the fusion linear in the number of tokens. The outputs are the per-branch CLS tokens after a
per-branch LayerNorm; the classifier (:class:`mmmask.MultiBranchLinearClsHead`) averages one
linear head per branch.

Numerics follow the official code (LayerNorm eps 1e-6, exact GELU, scale ``head_dim^-½``,
stochastic-depth schedule, ``d_c = 0`` meaning one cross-attention block without MLP) and the
parameter names are those of timm's port (``pos_embed_{i}``, ``cls_token_{i}``; the official
checkpoints' ``pos_embed.{i}`` / ``cls_token.{i}`` are renamed by
:func:`mmmask.models.converters.convert_crossvit`).
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor, nn

from ...registry import MODELS
from .base import normalize_out_indices
from ..layers.biased_attention import BiasedSelfAttention

__all__ = ['CrossViT', 'CrossAttention', 'CrossAttentionBlock', 'MultiScaleBlock',
           'CrossViTPatchEmbed', 'crossvit_num_patches']


def crossvit_num_patches(img_size: int, patch_size: int) -> int:
    """The official token count ``img // p * img // p``, evaluated left to right.

    Equals ``(img / p)²`` only when ``p`` divides ``img``; :class:`CrossViT` rejects the other
    sizes at construction (the official model builds them but fails in its forward).
    """
    return img_size // patch_size * img_size // patch_size


class CrossViTPatchEmbed(nn.Module):
    """Patch embedding of one branch: ``Conv2d(k = s = patch)``, or the † (dagger) conv stem.

    The stem (official ``multi_conv``) is Conv7×7/4 (→ C/4), ReLU, Conv3×3 (→ C/2), ReLU,
    Conv3×3 (→ C), with strides 3, 1 (patch 12) or 2, 2 (patch 16). Keys ``proj`` or
    ``proj.{0,2,4}`` as in the official code.
    """

    def __init__(self, img_size: int, patch_size: int, in_channels: int, embed_dims: int,
                 conv_stem: bool = False) -> None:
        super().__init__()
        self.img_size, self.patch_size = img_size, patch_size
        if conv_stem:
            if patch_size == 12:
                second, third = dict(stride=3, padding=0), dict(stride=1, padding=1)
            elif patch_size == 16:
                second, third = dict(stride=2, padding=1), dict(stride=2, padding=1)
            else:
                raise ValueError(f'the CrossViT dagger (conv) patch embedding exists for patch '
                                 f'sizes 12 and 16 only, got {patch_size}; use the plain '
                                 'patch embedding (an arch without "-dagger")')
            self.proj = nn.Sequential(
                nn.Conv2d(in_channels, embed_dims // 4, 7, stride=4, padding=3),
                nn.ReLU(inplace=True),
                nn.Conv2d(embed_dims // 4, embed_dims // 2, 3, **second),
                nn.ReLU(inplace=True),
                nn.Conv2d(embed_dims // 2, embed_dims, 3, **third))
        else:
            self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)
        self.grid_size = self._grid(img_size)

    def _grid(self, size: int) -> int:
        convs = [self.proj] if isinstance(self.proj, nn.Conv2d) else \
            [m for m in self.proj if isinstance(m, nn.Conv2d)]
        for conv in convs:
            size = (size + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1
        return size

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 3, img, img)`` → ``(B, N, C)``."""
        return self.proj(x).flatten(2).transpose(1, 2)


class CrossViTMlp(nn.Module):
    """``fc1 → GELU → drop → fc2 → drop`` (timm ``Mlp`` keys)."""

    def __init__(self, embed_dims: int, hidden_dims: int, drop: float = 0.) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, embed_dims)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class CrossViTBlock(nn.Module):
    """Pre-norm ViT block of one branch (timm ``Block`` keys: ``norm1``, ``attn.qkv``,
    ``attn.proj``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``); the attention is the shared
    :class:`BiasedSelfAttention`, so attention-bias providers can be plugged in."""

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float, qkv_bias: bool,
                 drop: float = 0., attn_drop: float = 0., drop_path: float = 0.,
                 norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.attn = BiasedSelfAttention(embed_dims, num_heads, qkv_bias=qkv_bias,
                                        attn_drop=attn_drop, proj_drop=drop, num_extra_tokens=1)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.mlp = CrossViTMlp(embed_dims, int(embed_dims * mlp_ratio), drop)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class CrossAttention(nn.Module):
    """Cross-attention with the first token as the only query (paper Eq. 5-6).

    ``q = W_q x_0``, ``k = W_k x``, ``v = W_v x`` over all tokens (the query token included):
    a ``1 × N`` attention map per head, so the cost is linear in N. Returns ``(B, 1, C)``.
    """

    def __init__(self, embed_dims: int, num_heads: int, qkv_bias: bool = False,
                 qk_scale: Optional[float] = None, attn_drop: float = 0.,
                 proj_drop: float = 0.) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.scale = qk_scale or self.head_dims**-0.5
        self.wq = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
        self.wk = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
        self.wv = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def attention(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """``(output (B, 1, C), attention map (B, heads, 1, N))``."""
        b, n, c = x.shape
        q = self.wq(x[:, :1]).view(b, 1, self.num_heads, -1).transpose(1, 2)
        k = self.wk(x).view(b, n, self.num_heads, -1).transpose(1, 2)
        v = self.wv(x).view(b, n, self.num_heads, -1).transpose(1, 2)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        out = (self.attn_drop(attn) @ v).transpose(1, 2).reshape(b, 1, c)
        return self.proj_drop(self.proj(out)), attn

    def forward(self, x: Tensor) -> Tensor:
        return self.attention(x)[0]


class CrossAttentionBlock(nn.Module):
    """``x_0 + DropPath(CrossAttention(LN(x)))``: only the (updated) query token is returned.

    The official builder always passes ``has_mlp=False``, so there is no MLP here.
    """

    def __init__(self, embed_dims: int, num_heads: int, qkv_bias: bool = False,
                 drop: float = 0., attn_drop: float = 0., drop_path: float = 0.,
                 norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.attn = CrossAttention(embed_dims, num_heads, qkv_bias=qkv_bias,
                                   attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :1] + self.drop_path(self.attn(self.norm1(x)))


def _projection(in_dims: int, out_dims: int, norm_eps: float) -> nn.Sequential:
    """``LN → GELU → Linear`` (keys ``0`` and ``2``), the paper's f(·) / g(·)."""
    return nn.Sequential(nn.LayerNorm(in_dims, eps=norm_eps), nn.GELU(),
                         nn.Linear(in_dims, out_dims))


class MultiScaleBlock(nn.Module):
    """One multi-scale transformer encoder ``[d_0, ..., d_{n-1}, d_c]`` (paper Fig. 2).

    Each branch ``i`` runs ``d_i`` ViT blocks; then for every branch its CLS token is projected
    to the width of branch ``i+1`` (``projs.i``), joined with branch ``i+1``'s patch tokens,
    updated by ``max(d_c, 1)`` cross-attention blocks (``fusion.i.j``; ``d_c = 0`` is the official
    "one block" case), projected back (``revert_projs.i``) and put in front of branch ``i``'s own
    patch tokens.

    Args:
        embed_dims: width per branch.
        depth: ``[d_0, ..., d_{n-1}, d_c]``.
        num_heads, mlp_ratios: per branch (the fusion into branch ``i+1``'s width uses its heads).
        drop_path: stochastic-depth rates; branch block ``j`` uses ``drop_path[j]``, the fusion
            ``drop_path[-1]`` (as officially).
    """

    def __init__(self, embed_dims: Sequence[int], depth: Sequence[int],
                 num_heads: Sequence[int], mlp_ratios: Sequence[float], qkv_bias: bool = True,
                 drop: float = 0., attn_drop: float = 0., drop_path: Sequence[float] = (0., ),
                 norm_eps: float = 1e-6) -> None:
        super().__init__()
        n = len(embed_dims)
        self.num_branches = n
        self.blocks = nn.ModuleList(
            nn.Sequential(*[
                CrossViTBlock(embed_dims[d], num_heads[d], mlp_ratios[d], qkv_bias, drop,
                              attn_drop, drop_path[j], norm_eps) for j in range(depth[d])
            ]) for d in range(n))
        self.projs = nn.ModuleList(
            _projection(embed_dims[d], embed_dims[(d + 1) % n], norm_eps) for d in range(n))
        self.fusion = nn.ModuleList(
            nn.Sequential(*[
                CrossAttentionBlock(embed_dims[(d + 1) % n], num_heads[(d + 1) % n], qkv_bias,
                                    drop, attn_drop, drop_path[-1], norm_eps)
                for _ in range(max(depth[-1], 1))
            ]) for d in range(n))
        self.revert_projs = nn.ModuleList(
            _projection(embed_dims[(d + 1) % n], embed_dims[d], norm_eps) for d in range(n))

    def forward(self, xs: Sequence[Tensor]) -> List[Tensor]:
        n = self.num_branches
        outs_b = [blocks(x) for x, blocks in zip(xs, self.blocks)]
        outs = []
        for i in range(n):
            other = outs_b[(i + 1) % n]
            query = self.projs[i](outs_b[i][:, :1])
            cls = self.fusion[i](torch.cat([query, other[:, 1:]], dim=1))
            outs.append(torch.cat([self.revert_projs[i](cls), outs_b[i][:, 1:]], dim=1))
        return outs


def _variant(embed_dims, depth, num_heads, mlp_ratios, dagger=False) -> dict:
    return dict(embed_dims=embed_dims, depths=[list(depth)] * 3, num_heads=num_heads,
                mlp_ratios=mlp_ratios, conv_patch_embed=dagger)


@MODELS.register_module()
class CrossViT(BaseModule):
    """CrossViT backbone (ICCV 2021): a multi-branch ViT with CLS-token cross-attention fusion.

    Args:
        arch: a preset name (see ``arch_zoo`` / ``arch_aliases``: ``'tiny'``, ``'small'``,
            ``'base'``, ``'9'``, ``'15'``, ``'18'`` and ``'9-dagger'``, ``'15-dagger'``,
            ``'18-dagger'``) or a dict with ``embed_dims`` (per branch), ``depths`` (one
            ``[d_0, ..., d_{n-1}, d_c]`` per multi-scale block), ``num_heads``, ``mlp_ratios``
            (per branch; a trailing fusion entry is accepted and unused) and optionally
            ``conv_patch_embed`` (the † stem).
        img_size: image size of each branch (square). The input is bicubically resized to it
            whenever its height differs (official behaviour). Published: ``(240, 224)``; the
            ``*_384`` / timm ``*_408`` checkpoints use ``(408, 384)``.
        patch_size: patch size of each branch; must divide the branch's image size.
        in_channels: input channels.
        qkv_bias: bias of the q/k/v projections (True in every published variant).
        drop_rate, attn_drop_rate, drop_path_rate: dropout after the position embedding and in
            the blocks, attention dropout, maximum stochastic-depth rate (official schedule).
        out_indices: branches whose outputs are returned (default all, S first).
        out_type: ``'cls_token'`` (``(B, C_i)`` after the branch's final norm, as the official
            classifier uses) or ``'featmap'`` (the normalised patch tokens as ``(B, C_i, h_i, w_i)``).
        norm_eps: LayerNorm epsilon (1e-6 in every published variant).
    """
    arch_keys = ('embed_dims', 'depths', 'num_heads', 'mlp_ratios')
    arch_zoo: Dict[str, dict] = {
        'tiny': _variant([96, 192], [1, 4, 0], [3, 3], [4, 4, 1]),
        'small': _variant([192, 384], [1, 4, 0], [6, 6], [4, 4, 1]),
        'base': _variant([384, 768], [1, 4, 0], [12, 12], [4, 4, 1]),
        '9': _variant([128, 256], [1, 3, 0], [4, 4], [3, 3, 1]),
        '15': _variant([192, 384], [1, 5, 0], [6, 6], [3, 3, 1]),
        '18': _variant([224, 448], [1, 6, 0], [7, 7], [3, 3, 1]),
        '9-dagger': _variant([128, 256], [1, 3, 0], [4, 4], [3, 3, 1], dagger=True),
        '15-dagger': _variant([192, 384], [1, 5, 0], [6, 6], [3, 3, 1], dagger=True),
        '18-dagger': _variant([224, 448], [1, 6, 0], [7, 7], [3, 3, 1], dagger=True),
    }
    arch_aliases: Dict[str, str] = {
        'ti': 'tiny', 't': 'tiny', 's': 'small', 'b': 'base',
        '9†': '9-dagger', '15†': '15-dagger', '18†': '18-dagger',
        '9_dagger': '9-dagger', '15_dagger': '15-dagger', '18_dagger': '18-dagger',
    }
    out_types = ('cls_token', 'featmap')

    def __init__(self, arch: Union[str, dict] = 'tiny',
                 img_size: Sequence[int] = (240, 224), patch_size: Sequence[int] = (12, 16),
                 in_channels: int = 3, qkv_bias: bool = True, drop_rate: float = 0.,
                 attn_drop_rate: float = 0., drop_path_rate: float = 0.,
                 out_indices: Union[int, Sequence[int]] = (0, 1), out_type: str = 'cls_token',
                 norm_eps: float = 1e-6, init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        arch = self._parse_arch(arch)
        embed_dims, depths = list(arch['embed_dims']), [list(d) for d in arch['depths']]
        num_heads, mlp_ratios = list(arch['num_heads']), list(arch['mlp_ratios'])
        conv_stem = bool(arch.get('conv_patch_embed', False))
        n = len(embed_dims)
        img_size, patch_size = list(img_size), list(patch_size)
        if len(img_size) != n or len(patch_size) != n:
            raise ValueError(f'CrossViT has {n} branches (arch embed_dims {embed_dims}) but '
                             f'img_size={img_size} and patch_size={patch_size}: give one '
                             'image size and one patch size per branch')
        if out_type not in self.out_types:
            raise ValueError(f'CrossViT out_type must be one of {self.out_types}, got {out_type!r}')
        self.out_indices = normalize_out_indices(out_indices, n, 'branches')
        self.out_type = out_type
        self.num_branches = n
        self.embed_dims = embed_dims
        self.img_size = img_size
        self.patch_size = patch_size

        self.patch_embed = nn.ModuleList()
        self.num_patches = []
        for i, (size, patch, dims) in enumerate(zip(img_size, patch_size, embed_dims)):
            embed = CrossViTPatchEmbed(size, patch, in_channels, dims, conv_stem)
            official = crossvit_num_patches(size, patch)
            if size % patch or embed.grid_size**2 != official:
                raise ValueError(f'CrossViT branch {i}: img_size {size} is not a multiple of '
                                 f'patch_size {patch}; choose sizes such as 240/12 and 224/16')
            self.patch_embed.append(embed)
            self.num_patches.append(official)
            self.register_parameter(f'pos_embed_{i}',
                                    nn.Parameter(torch.zeros(1, 1 + official, dims)))
            self.register_parameter(f'cls_token_{i}', nn.Parameter(torch.zeros(1, 1, dims)))
        self.pos_drop = nn.Dropout(drop_rate)

        # official stochastic-depth rule: one linspace over sum(d_last + d_c); every block takes
        # max(branch depths) + d_c entries of it (identical whenever d_0 <= d_last, which every
        # published variant satisfies; the official code fails otherwise).
        spans = [max(d[:-1]) + d[-1] for d in depths]
        dpr = torch.linspace(0, drop_path_rate, sum(spans)).tolist()
        self.blocks = nn.ModuleList()
        start = 0
        for depth, span in zip(depths, spans):
            rates = dpr[start:start + span] or [0.]
            self.blocks.append(MultiScaleBlock(embed_dims, depth, num_heads, mlp_ratios,
                                               qkv_bias, drop_rate, attn_drop_rate, rates,
                                               norm_eps))
            start += span
        self.norm = nn.ModuleList(nn.LayerNorm(d, eps=norm_eps) for d in embed_dims)
        self._official_init()

    @classmethod
    def _parse_arch(cls, arch: Union[str, dict]) -> dict:
        if isinstance(arch, str):
            key = arch.lower()
            key = cls.arch_aliases.get(key, key)
            if key not in cls.arch_zoo:
                raise ValueError(f'Unknown CrossViT arch {arch!r}; valid: {sorted(cls.arch_zoo)} '
                                 f'(aliases {sorted(cls.arch_aliases)}) or a dict with keys '
                                 f'{cls.arch_keys}')
            return copy.deepcopy(cls.arch_zoo[key])
        missing = set(cls.arch_keys) - set(arch)
        if missing:
            raise ValueError(f'CrossViT arch dict misses {sorted(missing)} (needs {cls.arch_keys})')
        n = len(arch['embed_dims'])
        if n < 2:
            raise ValueError('CrossViT needs at least two branches (embed_dims of length >= 2)')
        if len(arch['num_heads']) != n or len(arch['mlp_ratios']) not in (n, n + 1):
            raise ValueError(f'CrossViT arch: num_heads needs {n} entries and mlp_ratios {n} '
                             f'(or {n + 1}), got {arch["num_heads"]} and {arch["mlp_ratios"]}')
        for depth in arch['depths']:
            if len(depth) != n + 1 or min(depth[:-1]) < 1 or depth[-1] < 0:
                raise ValueError(f'CrossViT arch: each depths entry is [d_0, ..., d_{n - 1}, d_c] '
                                 f'with every branch depth >= 1, got {depth}')
        return dict(arch)

    def _official_init(self) -> None:
        """trunc-normal(0.02) Linear weights with zero bias, unit LayerNorms, trunc-normal(0.02)
        CLS tokens and position embeddings; convolutions keep PyTorch's default init."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for i in range(self.num_branches):
            trunc_normal_(getattr(self, f'pos_embed_{i}'), std=.02)
            trunc_normal_(getattr(self, f'cls_token_{i}'), std=.02)

    def init_weights(self) -> None:
        if self.init_cfg is not None:
            return super().init_weights()
        self._official_init()

    def branch_input(self, x: Tensor, i: int) -> Tensor:
        """The image branch ``i`` sees: bicubically resized to ``img_size[i]`` when the input
        height differs (the width is not checked, as officially)."""
        size = self.img_size[i]
        if x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode='bicubic', align_corners=False)
        if x.shape[-1] != size:
            raise ValueError(
                f'CrossViT branch {i} needs {size}x{size} images; got {tuple(x.shape[-2:])}. '
                f'Inputs are resized only when their height differs from {size} (as in the '
                'official model), so feed square images (e.g. a CenterCrop/RandomResizedCrop '
                'to the crop size of the config)')
        return x

    def tokens(self, x: Tensor) -> List[Tensor]:
        """Per-branch token sequences ``[CLS, patches] + pos_embed``, before the first block."""
        if x.dim() != 4:
            raise ValueError(f'CrossViT expects (B, C, H, W) images, got shape {tuple(x.shape)}')
        xs = []
        for i, embed in enumerate(self.patch_embed):
            t = embed(self.branch_input(x, i))
            cls = getattr(self, f'cls_token_{i}').expand(t.shape[0], -1, -1)
            t = torch.cat([cls, t], dim=1) + getattr(self, f'pos_embed_{i}')
            xs.append(self.pos_drop(t))
        return xs

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        xs = self.tokens(x)
        for block in self.blocks:
            xs = block(xs)
        outs = []
        for i in self.out_indices:
            y = self.norm[i](xs[i])
            if self.out_type == 'cls_token':
                outs.append(y[:, 0])
            else:
                side = self.patch_embed[i].grid_size
                outs.append(y[:, 1:].transpose(1, 2).reshape(y.shape[0], -1, side, side))
        return tuple(outs)
