"""Gaussian mixture mask (GMM) attention and the GMM-ViT of "RetNet viewed through convolution".

Paper: C. Li, X. Jin et al., *Gaussian Mixture Mask Attention* / "RetNet viewed through
convolution", Pattern Recognition 2024 (arXiv:2309.05375); official code
github.com/CatworldLee/Gaussian-Mixture-Mask-Attention (``models/gmm.py``, ``models/vit.py``).

The attention logits ``L = s·QKᵀ`` of every layer are multiplied element-wise (Hadamard product,
*before* the softmax — the official code multiplies although the README says "add") by

    G_h = Σ_k α_{k,h} · M^(1 / (σ_{k,h}² + ε)),   M_ij = exp(-‖p_i - p_j‖² / 2),

a mixture of K Gaussians of the distance between the patch positions ``p`` on the token grid, with
2·K·heads learnable scalars per layer (σ, α; ε = 1e-5). The element-wise learnable mask baseline
(ELM, official ``Simple_Mask``) multiplies the logits by a free N×N matrix shared by the heads.
Both are *bias providers* for :class:`mmmask.models.layers.BiasedSelfAttention` returning a
:class:`mmmask.models.layers.MultiplicativeBias`.

:class:`GMMViT` is the official small-resolution ViT (PreNorm blocks, qkv without bias, separate
``head_dims``, MLP ratio 2, learned position embedding, xavier-normal init). With a mask (GMM or
ELM) it drops the CLS token and mean-pools the tokens; without one it is the plain CLS-token ViT
baseline of the paper.
"""
import math
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...registry import MODELS
from ..layers.attention_bias import MultiplicativeBias
from ..layers.biased_attention import BiasedSelfAttention

__all__ = ['GaussianMixtureMask', 'ElementwiseMask', 'GMMViT', 'gaussian_distance_prior',
           'gmm_extra_params', 'gmm_param_overhead', 'gmm_mask_ops']


def gaussian_distance_prior(hw: Tuple[int, int], mode: str = 'official',
                            device=None) -> Tensor:
    """The fixed distance prior ``M`` of GMM attention, ``(H·W, H·W)`` over a row-major grid.

    ``mode='official'`` reproduces the official arithmetic bit for bit: ``exp(-(dx²+dy²))`` in
    float32 first, then ``** 0.5`` — so entries with ``d² ≳ 88`` pass through float32 subnormals and
    entries with ``d² > 103`` are exactly 0 (they stay 0 for every σ). ``mode='log'`` returns
    ``log M = -d²/2`` instead (no underflow), for :class:`GaussianMixtureMask` ``prior='exact'``.
    """
    h, w = hw
    idx = torch.arange(h * w, device=device)
    y, x = (idx // w).float(), (idx % w).float()
    d2 = (x[:, None] - x[None, :])**2 + (y[:, None] - y[None, :])**2
    if mode == 'official':
        return torch.exp(-d2)**(1 / 2)
    if mode == 'log':
        return -d2 / 2
    raise ValueError(f"prior mode must be 'official' or 'log', got {mode!r}")


def _pad_gain(gain: Tensor, num_tokens: int) -> Tensor:
    """Extend a grid gain ``(..., N, N)`` to ``num_tokens`` with ones for the leading extra tokens
    (CLS/distillation tokens are not on the grid: their logits are left unchanged)."""
    n = gain.shape[-1]
    extra = num_tokens - n
    if extra == 0:
        return gain
    if extra < 0:
        raise ValueError(f'the attention has {num_tokens} tokens, fewer than the {n} grid tokens '
                         'of the mask: pass hw=(H, W) matching the token grid')
    out = gain.new_ones(*gain.shape[:-2], num_tokens, num_tokens)
    out[..., extra:, extra:] = gain
    return out


@MODELS.register_module()
class GaussianMixtureMask(nn.Module):
    """GMM bias provider: ``logits ⊙ Σ_k α_k · M^(1/(σ_k²+ε))`` (Li et al., 2024, Eq. of GMM).

    Args:
        num_heads: attention heads (α and σ are per kernel and head).
        num_kernels: K Gaussians (official ``--num_kernals``, default 5; 3 in the class default).
        eps: the ε in ``1/(σ²+ε)`` (official 1e-5).
        prior: ``'official'`` (the official prior, with its float32 underflow for far tokens) or
            ``'exact'`` (``exp(-d²/(2(σ²+ε)))`` from ``log M``: no underflow on large grids).
        sigma_init: ``(mean, std)`` of the normal init of σ (official 10, 10).
        alpha_std: std of the zero-mean normal init of α (official 2).

    Parameters ``sigma`` and ``alpha`` have the official shape ``(K, heads, 1, 1)``. The prior is
    recomputed per grid (and cached), so the provider works for any ``hw`` — including Swin windows.
    """
    #: a logit-bias provider, not a backbone (for tests enumerating registered backbones)
    is_bias_provider = True

    def __init__(self, num_heads: int, num_kernels: int = 5, eps: float = 1e-5,
                 prior: str = 'official', sigma_init: Tuple[float, float] = (10., 10.),
                 alpha_std: float = 2.) -> None:
        super().__init__()
        if prior not in ('official', 'exact'):
            raise ValueError(f"prior must be 'official' or 'exact', got {prior!r}")
        self.num_heads, self.num_kernels, self.eps, self.prior = num_heads, num_kernels, eps, prior
        self.sigma = nn.Parameter(torch.randn(num_kernels, num_heads, 1, 1) * sigma_init[1] +
                                  sigma_init[0])
        self.alpha = nn.Parameter(torch.randn(num_kernels, num_heads, 1, 1) * alpha_std)
        self._priors: Dict[tuple, Tensor] = {}

    def distance_prior(self, hw: Tuple[int, int], device) -> Tensor:
        key = (tuple(hw), str(device))
        if key not in self._priors:
            mode = 'official' if self.prior == 'official' else 'log'
            self._priors[key] = gaussian_distance_prior(hw, mode, device)
        return self._priors[key]

    def gain(self, hw: Tuple[int, int]) -> Tensor:
        """``G``: ``(1, heads, N, N)``."""
        prior = self.distance_prior(hw, self.sigma.device).to(self.sigma.dtype)
        power = 1 / (self.sigma**2 + self.eps)
        if self.prior == 'official':
            kernels = prior**power  # zeros of the prior stay 0 (torch gives them a 0 gradient)
        else:
            kernels = torch.exp(prior * power)
        return (self.alpha * kernels).sum(0, keepdim=True)

    def forward(self, x: Tensor, hw: Tuple[int, int], **kwargs) -> MultiplicativeBias:
        return MultiplicativeBias(_pad_gain(self.gain(hw), x.shape[1]))

    def extra_repr(self) -> str:
        return f'num_heads={self.num_heads}, num_kernels={self.num_kernels}, prior={self.prior}'


@MODELS.register_module()
class ElementwiseMask(nn.Module):
    """ELM bias provider (the paper's element-wise learnable mask baseline, official
    ``Simple_Mask``): ``logits ⊙ W`` with a free ``W ∈ R^{N×N}`` shared by all heads, zeros at
    init (uniform attention at the start of training).

    Args:
        grid: the token grid ``(H, W)`` (or ``N`` for a square grid); the mask is tied to it.
        init_value: initial value of every entry (official 0).
    """
    is_bias_provider = True

    def __init__(self, grid: Union[int, Sequence[int]], init_value: float = 0.) -> None:
        super().__init__()
        if isinstance(grid, int):
            side = math.isqrt(grid)
            if side * side != grid:
                raise ValueError(f'ElementwiseMask grid={grid} is not a square: pass (H, W)')
            grid = (side, side)
        self.grid = tuple(grid)
        n = self.grid[0] * self.grid[1]
        self.mask = nn.Parameter(torch.full((n, n), float(init_value)))

    def forward(self, x: Tensor, hw: Tuple[int, int], **kwargs) -> MultiplicativeBias:
        if tuple(hw) != self.grid:
            raise ValueError(f'ElementwiseMask was built for a {self.grid} token grid, the input '
                             f'has {tuple(hw)}: the learnable mask is tied to one grid size')
        return MultiplicativeBias(_pad_gain(self.mask, x.shape[1]))

    def extra_repr(self) -> str:
        return f'grid={self.grid}'


def gmm_extra_params(num_layers: int, num_heads: Union[int, Sequence[int]],
                     num_kernels: int = 5) -> int:
    """Learnable parameters GMM attention adds: ``2·K·heads`` per layer (σ and α).

    ``num_heads`` may be a per-layer sequence (hierarchical models such as Swin).
    """
    heads = [num_heads] * num_layers if isinstance(num_heads, int) else list(num_heads)
    if len(heads) != num_layers:
        raise ValueError(f'{len(heads)} head counts for {num_layers} layers')
    return sum(2 * num_kernels * h for h in heads)


def gmm_param_overhead(embed_dims: int, num_layers: int, num_heads: int, num_kernels: int = 5,
                       mask_type: str = 'gmm', num_patches: int = 64) -> Dict[str, int]:
    """Parameter difference of a masked GMM-ViT against the plain CLS-token ViT of equal
    width/depth (official ``ViT`` with/without ``is_GMM``/``is_SLM``).

    The mask adds ``2·K·heads·L`` (GMM) or ``N²·L`` (ELM) parameters; dropping the CLS token
    removes the token and its position-embedding row (``2·D``). For the official CIFAR ViT
    (D 192, L 9, 12 heads, K 5): GMM +1080, CLS/pos −384, net +696 (2,709,796 → 2,710,492).
    """
    if mask_type == 'gmm':
        mask = gmm_extra_params(num_layers, num_heads, num_kernels)
    elif mask_type == 'elm':
        mask = num_layers * num_patches**2
    else:
        raise ValueError(f"mask_type must be 'gmm' or 'elm', got {mask_type!r}")
    return dict(mask=mask, cls_and_pos=-2 * embed_dims, net=mask - 2 * embed_dims)


def gmm_mask_ops(num_layers: int, num_heads: Union[int, Sequence[int]], num_tokens: int,
                 num_kernels: int = 5, batch_size: int = 1) -> Dict[str, int]:
    """Element-wise operations GMM attention adds to a forward pass (not counted by matmul/conv
    FLOP counters such as ``torch.utils.flop_counter``).

    ``gain``: building ``G = Σ_k α_k·M^(1/(σ_k²+ε))`` — per layer K·heads·N² powers and as many
    multiply-adds; it depends on parameters only, so it is paid once per forward whatever the batch
    (and could be cached at inference). ``apply``: the Hadamard product ``L ⊙ G``, heads·N² per
    image and layer. ``num_tokens`` is N (the window size² for window attention, per window:
    multiply ``apply`` by the number of windows). For the paper's CIFAR ViT (9 layers, 12 heads,
    N = 64, K = 5): gain 2·2.21M, apply 0.44M per image — 0.26 % of its 170.9M MACs.
    """
    heads = [num_heads] * num_layers if isinstance(num_heads, int) else list(num_heads)
    if len(heads) != num_layers:
        raise ValueError(f'{len(heads)} head counts for {num_layers} layers')
    n2 = num_tokens * num_tokens
    return dict(gain_pow=sum(num_kernels * h * n2 for h in heads),
                gain_mac=sum(num_kernels * h * n2 for h in heads),
                apply=batch_size * sum(h * n2 for h in heads))


class GMMFFN(nn.Module):
    """Official FeedForward: Linear → GELU (exact) → Dropout → Linear → Dropout."""

    def __init__(self, embed_dims: int, hidden_dims: int, drop: float = 0.) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, embed_dims)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class GMMBlock(nn.Module):
    """Pre-norm block ``x + DP(Attn(LN(x)))``, ``x + DP(FFN(LN(x)))`` (official ViT layer)."""

    def __init__(self, embed_dims: int, num_heads: int, head_dims: int, hidden_dims: int,
                 bias_provider: Optional[nn.Module], num_extra_tokens: int, drop: float,
                 drop_path: nn.Module) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(embed_dims)
        self.attn = BiasedSelfAttention(embed_dims, num_heads, qkv_bias=False, proj_drop=drop,
                                        bias_provider=bias_provider,
                                        num_extra_tokens=num_extra_tokens, head_dims=head_dims)
        if num_heads == 1 and head_dims == embed_dims:
            # official: no output projection for a single head of full width
            self.attn.proj = nn.Identity()
            self.attn.proj_drop = nn.Identity()
        self.ln2 = nn.LayerNorm(embed_dims)
        self.ffn = GMMFFN(embed_dims, hidden_dims, drop)
        self.drop_path = drop_path

    def forward(self, x: Tensor, hw: Tuple[int, int]) -> Tensor:
        x = self.drop_path(self.attn(self.ln1(x), hw)) + x
        return self.drop_path(self.ffn(self.ln2(x))) + x


@MODELS.register_module()
class GMMViT(BaseModule):
    """The small-resolution ViT of the GMM paper, with GMM (``mask_type='gmm'``), ELM (``'elm'``)
    or no mask (``None``, the plain ViT baseline).

    Args:
        arch: a preset name (the official ``create_model.py`` models: ``'vit'`` — the 2.7M CIFAR
            model of the paper's tables —, ``'vit-base'``, ``'vit-heat'``, ``'vit-d6'``,
            ``'vit-d15'``, ``'vit-d30'``, ``'vit-d60'``) or a dict with ``embed_dims``,
            ``num_layers``, ``num_heads``, ``head_dims`` and ``mlp_ratio``.
        img_size: input size (official 32 for CIFAR/SVHN, 64 for Tiny-ImageNet).
        patch_size: official 4 at 32 px (``'vit'``), 8 at 64 px; 2 at 32 px for vit-base/heat.
        in_channels: image channels.
        mask_type: ``'gmm'``, ``'elm'`` or None.
        num_kernels: K of GMM (official default 5).
        mask_cfg: extra kwargs of the provider (e.g. ``dict(prior='exact')``).
        drop_rate: dropout in the FFN and after the attention projection (official ``dropout``).
        emb_drop_rate: dropout after the position embedding.
        drop_path_rate: stochastic depth; the official model uses **one rate for every layer**
            (``--sd``, default 0.1).
        with_cls_token: default: True only without a mask (official).
        out_type: ``'avg_featmap'`` (mean of the tokens → the official head LayerNorm: the
            official pooled feature; default with a mask), ``'cls_token'`` (CLS → LayerNorm;
            default without a mask), ``'featmap'`` (``(B, C, H, W)`` tokens) or ``'raw'``
            (``(B, N, C)`` incl. extra tokens). The LayerNorm ``norm`` (official ``mlp_head.0``)
            is applied to pooled outputs of the last layer only.
        out_indices: layers whose output is returned (negative counts from the end).
        interpolate_pos_embed: accept other input sizes by bicubic resizing of the position
            embedding (not in the official code; off by default: a wrong size raises).
        init_cfg: mmengine init config (the official init is applied at construction).
    """
    arch_zoo = {
        'vit': dict(embed_dims=192, num_layers=9, num_heads=12, head_dims=16, mlp_ratio=2),
        'vit-base': dict(embed_dims=256, num_layers=8, num_heads=4, head_dims=64, mlp_ratio=2),
        'vit-heat': dict(embed_dims=192, num_layers=8, num_heads=6, head_dims=32, mlp_ratio=2),
        'vit-d6': dict(embed_dims=252, num_layers=6, num_heads=12, head_dims=21, mlp_ratio=2),
        'vit-d15': dict(embed_dims=144, num_layers=15, num_heads=12, head_dims=12, mlp_ratio=2),
        'vit-d30': dict(embed_dims=72, num_layers=30, num_heads=12, head_dims=6, mlp_ratio=2),
        'vit-d60': dict(embed_dims=72, num_layers=60, num_heads=12, head_dims=6, mlp_ratio=2),
    }
    mask_types = ('gmm', 'elm', None)
    out_types = ('avg_featmap', 'cls_token', 'featmap', 'raw')

    def __init__(self, arch: Union[str, dict] = 'vit', img_size: Union[int, Sequence[int]] = 32,
                 patch_size: int = 4, in_channels: int = 3, mask_type: Optional[str] = 'gmm',
                 num_kernels: int = 5, mask_cfg: Optional[dict] = None, drop_rate: float = 0.,
                 emb_drop_rate: float = 0., drop_path_rate: float = 0.1,
                 with_cls_token: Optional[bool] = None, out_type: Optional[str] = None,
                 out_indices: Union[int, Sequence[int]] = -1,
                 interpolate_pos_embed: bool = False, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if isinstance(arch, str):
            if arch not in self.arch_zoo:
                raise KeyError(f'GMMViT arch {arch!r} is unknown; choose one of '
                               f'{sorted(self.arch_zoo)} or pass a dict with embed_dims, '
                               'num_layers, num_heads, head_dims, mlp_ratio')
            arch = self.arch_zoo[arch]
        arch = dict(arch)
        need = {'embed_dims', 'num_layers', 'num_heads'}
        if not need <= set(arch):
            raise KeyError(f'GMMViT arch dict needs {sorted(need)}, got {sorted(arch)}')
        self.embed_dims = d = arch['embed_dims']
        self.num_layers = arch['num_layers']
        self.num_heads = arch['num_heads']
        self.head_dims = arch.get('head_dims') or d // self.num_heads
        mlp_ratio = arch.get('mlp_ratio', 2)
        if mask_type not in self.mask_types:
            raise ValueError(f'mask_type must be one of {self.mask_types}, got {mask_type!r}')
        self.mask_type = mask_type
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.patch_size = patch_size
        if self.img_size[0] % patch_size or self.img_size[1] % patch_size:
            raise ValueError(f'img_size {self.img_size} is not divisible by patch_size '
                             f'{patch_size}')
        self.patch_resolution = (self.img_size[0] // patch_size, self.img_size[1] // patch_size)
        num_patches = self.patch_resolution[0] * self.patch_resolution[1]
        self.with_cls_token = mask_type is None if with_cls_token is None else with_cls_token
        self.num_extra_tokens = int(self.with_cls_token)
        if out_type is None:
            out_type = 'cls_token' if self.with_cls_token else 'avg_featmap'
        if out_type not in self.out_types:
            raise ValueError(f'out_type must be one of {self.out_types}, got {out_type!r}')
        if out_type == 'cls_token' and not self.with_cls_token:
            raise ValueError("out_type='cls_token' needs with_cls_token=True")
        self.out_type = out_type
        self.interpolate_pos_embed = interpolate_pos_embed

        # official: Linear on (p1 p2 c)-flattened patches == this convolution (converter permutes)
        self.patch_embed = nn.Conv2d(in_channels, d, patch_size, patch_size)
        self.pos_embed = nn.Parameter(torch.randn(1, num_patches + self.num_extra_tokens, d))
        if self.with_cls_token:
            self.cls_token = nn.Parameter(torch.randn(1, 1, d))
        self.drop_after_pos = nn.Dropout(emb_drop_rate)
        shared_drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self.layers = nn.ModuleList()
        for _ in range(self.num_layers):
            self.layers.append(GMMBlock(
                d, self.num_heads, self.head_dims, int(d * mlp_ratio),
                self._provider(num_kernels, mask_cfg), self.num_extra_tokens, drop_rate,
                shared_drop_path))
        self.norm = nn.LayerNorm(d)  # official mlp_head.0

        if isinstance(out_indices, int):
            out_indices = [out_indices]
        self.out_indices = []
        for index in out_indices:
            if not -self.num_layers <= index < self.num_layers:
                raise IndexError(f'out_index {index} is out of range for {self.num_layers} '
                                 'layers')
            self.out_indices.append(index % self.num_layers)
        self._official_init()

    def _provider(self, num_kernels: int, mask_cfg: Optional[dict]) -> Optional[nn.Module]:
        cfg = dict(mask_cfg or {})
        if self.mask_type == 'gmm':
            return GaussianMixtureMask(self.num_heads, num_kernels, **cfg)
        if self.mask_type == 'elm':
            return ElementwiseMask(self.patch_resolution, **cfg)
        return None

    def _official_init(self) -> None:
        """Official ``init_weights`` (xavier-normal Linear/Conv weights, zero biases, unit LNs);
        position embedding and CLS token keep their ``randn`` init, σ/α/ELM theirs."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                if isinstance(m, nn.Conv2d):
                    # same fans as the official Linear(p·p·C, D)
                    nn.init.xavier_normal_(m.weight.view(m.weight.shape[0], -1))
                else:
                    nn.init.xavier_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _pos_embed(self, hw: Tuple[int, int]) -> Tensor:
        if hw == self.patch_resolution:
            return self.pos_embed
        if not self.interpolate_pos_embed:
            raise ValueError(
                f'GMMViT was built for {self.img_size[0]}x{self.img_size[1]} inputs (a '
                f'{self.patch_resolution} patch grid), got a {hw} grid: set img_size to the input '
                'size, or interpolate_pos_embed=True')
        from mmpretrain.models.utils import resize_pos_embed
        return resize_pos_embed(self.pos_embed, self.patch_resolution, hw, mode='bicubic',
                                num_extra_tokens=self.num_extra_tokens)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        b = x.shape[0]
        x = self.patch_embed(x)
        hw = tuple(x.shape[-2:])
        x = x.flatten(2).transpose(1, 2)
        if self.with_cls_token:
            x = torch.cat([self.cls_token.expand(b, -1, -1), x], dim=1)
        x = self.drop_after_pos(x + self._pos_embed(hw))
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x, hw)
            if i in self.out_indices:
                outs.append(self._format_output(x, hw, last=i == self.num_layers - 1))
        return tuple(outs)

    def _format_output(self, x: Tensor, hw: Tuple[int, int], last: bool) -> Tensor:
        if self.out_type == 'raw':
            return x
        patches = x[:, self.num_extra_tokens:]
        if self.out_type == 'featmap':
            return patches.transpose(1, 2).reshape(x.shape[0], -1, *hw)
        pooled = x[:, 0] if self.out_type == 'cls_token' else patches.mean(dim=1)
        return self.norm(pooled) if last else pooled
