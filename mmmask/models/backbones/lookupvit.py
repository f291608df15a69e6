"""LookupViT: compressing visual information to a limited number of tokens.

Koner, Jain, Jain, Tresp, Paul — ECCV 2024, arXiv:2407.12753. No official code is public; this is a
re-implementation from the paper's description (every assumption is listed in
``configs/lookupvit/README.md``).

Two token sets describe one image:

* N **lookup** tokens: the full-resolution patch grid (``h×w``, e.g. 14×14 at 224 px / patch 16)
  with a learnable position embedding;
* M **compressed** tokens: the lookup grid (after the position embedding) bilinearly resized to a
  small grid (e.g. 5×5 … 10×10). The grid is a run-time choice: one set of weights serves several M
  (multi-resolution training samples M per step).

Every LookupViT block (Fig. 2 of the paper):

1. *information gathering* — compressed tokens cross-attend to the lookup tokens
   (``MHBC_{l→p}``): ``A = softmax(Q_p K_lᵀ / √d) ∈ R^{M×N}`` per head, ``p += A V_l``;
2. *representation refinement* — a full ViT block (MHSA + MLP×4) on the M compressed tokens only;
3. *global context infusion* — lookup tokens read the refined compressed tokens through the
   **same** attention map transposed (``MHBC_{p→l}``): ``l += Aᵀ V_p`` with a new value projection
   (no new queries/keys, no new softmax), then a cheap MLP of low hidden ratio on the lookup tokens.

Cost per block ≈ ``O(M²D + MND + M D² + N D²·(3 + 2·r_l))`` instead of ViT's ``O(N²D + 12 N D²)``
(see :func:`lookupvit_flops`).
"""
import math
import random
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
from torch import Tensor, nn

from ...registry import MODELS
from .base import normalize_out_indices, resolve_arch

__all__ = ['BidirectionalCrossAttention', 'LookupViTBlock', 'LookupViT', 'lookupvit_flops',
           'vit_flops', 'count_forward_flops']

GridLike = Union[int, Sequence[int]]


def _to_grid(grid: GridLike) -> Tuple[int, int]:
    if isinstance(grid, int):
        return (grid, grid)
    grid = tuple(int(g) for g in grid)
    if len(grid) != 2 or min(grid) < 1:
        raise ValueError(f'a token grid is an int or (h, w) with positive entries, got {grid}')
    return grid


class BidirectionalCrossAttention(nn.Module):
    """Multi-head bidirectional cross attention (MHBC) between two token sets.

    ``gather(p, l)`` — the *few* tokens ``p`` (M) attend to the *many* tokens ``l`` (N):
    ``A = softmax(q(p) k(l)ᵀ · d^-½)`` of shape ``(B, heads, M, N)``; returns
    ``(proj(A · v(l)), A)``.

    ``scatter(p, attn)`` — the many tokens read the few through the transposed map:
    ``proj_rev(Â · v_rev(p))`` with ``Â = Aᵀ`` (``reverse_norm='none'``: the paper's reuse of the
    softmaxed map as is, so a lookup token's weights over the M compressed tokens do not sum to 1)
    or ``Â = Aᵀ`` re-normalised over its M entries (``reverse_norm='lookup'``: an option, not the
    paper's). No queries, keys or softmax are computed in this direction.

    Inputs are expected to be normalised by the caller (pre-norm blocks).

    Args:
        embed_dims: channels D of both token sets.
        num_heads: attention heads.
        qkv_bias: biases in the q/k/v projections.
        attn_drop: dropout on the attention map (applied separately in each direction).
        proj_drop: dropout after the output projections.
        reverse_norm: ``'none'`` (paper) or ``'lookup'``.
    """
    reverse_norms = ('none', 'lookup')

    def __init__(self, embed_dims: int, num_heads: int, qkv_bias: bool = True,
                 attn_drop: float = 0., proj_drop: float = 0.,
                 reverse_norm: str = 'none') -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims {embed_dims} is not divisible by num_heads {num_heads}')
        if reverse_norm not in self.reverse_norms:
            raise ValueError(f'reverse_norm must be one of {self.reverse_norms}, '
                             f'got {reverse_norm!r}')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.scale = self.head_dims**-0.5
        self.reverse_norm = reverse_norm
        self.q = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
        self.kv = nn.Linear(embed_dims, 2 * embed_dims, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.v_rev = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
        self.proj_rev = nn.Linear(embed_dims, embed_dims)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj_drop = nn.Dropout(proj_drop)

    def _heads(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dims).transpose(1, 2)

    def _merge(self, x: Tensor) -> Tensor:
        b, h, n, d = x.shape
        return x.transpose(1, 2).reshape(b, n, h * d)

    def gather(self, p: Tensor, l: Tensor) -> Tuple[Tensor, Tensor]:
        """``p``: ``(B, M, D)`` queries; ``l``: ``(B, N, D)`` keys/values.

        Returns the update of ``p`` ``(B, M, D)`` and the softmaxed map ``(B, heads, M, N)``.
        """
        q = self._heads(self.q(p))
        k, v = (self._heads(t) for t in self.kv(l).chunk(2, dim=-1))
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn.softmax(dim=-1)
        out = self._merge(self.attn_drop(attn) @ v)
        return self.proj_drop(self.proj(out)), attn

    def reverse_map(self, attn: Tensor) -> Tensor:
        """The ``(B, heads, N, M)`` map :meth:`scatter` uses (``Aᵀ``, optionally renormalised)."""
        rev = attn.transpose(-2, -1)
        if self.reverse_norm == 'lookup':
            rev = rev / rev.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(rev.dtype).tiny)
        return rev

    def scatter(self, p: Tensor, attn: Tensor) -> Tensor:
        """``p``: ``(B, M, D)`` (refined compressed tokens); ``attn``: the map from :meth:`gather`.

        Returns the update of the lookup tokens, ``(B, N, D)``.
        """
        v = self._heads(self.v_rev(p))
        out = self._merge(self.attn_drop(self.reverse_map(attn)) @ v)
        return self.proj_drop(self.proj_rev(out))


class LookupMLP(nn.Sequential):
    """fc1 → GELU → dropout → fc2 → dropout (the cheap MLP on lookup tokens)."""

    def __init__(self, embed_dims: int, hidden_dims: int, drop: float = 0.) -> None:
        super().__init__(nn.Linear(embed_dims, hidden_dims), nn.GELU(), nn.Dropout(drop),
                         nn.Linear(hidden_dims, embed_dims), nn.Dropout(drop))


class LookupViTBlock(nn.Module):
    """One LookupViT block (pre-norm everywhere, residual on both token sets).

    ``p += MHBC_{l→p}(LN(p), LN(l))`` → ViT block on ``p`` (mmpretrain
    ``TransformerEncoderLayer``, keys ``ln1/attn/ln2/ffn``) → ``l += MHBC_{p→l}(LN(p), Aᵀ)`` →
    ``l += MLP_l(LN(l))``.
    """

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float = 4.,
                 lookup_mlp_ratio: float = 0.5, qkv_bias: bool = True, drop_rate: float = 0.,
                 attn_drop_rate: float = 0., drop_path_rate: float = 0.,
                 reverse_norm: str = 'none') -> None:
        super().__init__()
        self.norm_p = nn.LayerNorm(embed_dims, eps=1e-6)
        self.norm_l = nn.LayerNorm(embed_dims, eps=1e-6)
        self.mhbc = BidirectionalCrossAttention(embed_dims, num_heads, qkv_bias, attn_drop_rate,
                                                drop_rate, reverse_norm)
        self.compressed = TransformerEncoderLayer(
            embed_dims, num_heads, int(embed_dims * mlp_ratio), drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate, drop_path_rate=drop_path_rate, qkv_bias=qkv_bias,
            norm_cfg=dict(type='LN', eps=1e-6))
        self.norm_rev = nn.LayerNorm(embed_dims, eps=1e-6)
        self.norm_mlp_l = nn.LayerNorm(embed_dims, eps=1e-6)
        self.mlp_l = LookupMLP(embed_dims, max(1, int(embed_dims * lookup_mlp_ratio)), drop_rate)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, p: Tensor, l: Tensor,
                return_attn: bool = False) -> Union[Tuple[Tensor, Tensor],
                                                    Tuple[Tensor, Tensor, Tensor]]:
        upd, attn = self.mhbc.gather(self.norm_p(p), self.norm_l(l))
        p = p + self.drop_path(upd)
        p = self.compressed(p)
        l = l + self.drop_path(self.mhbc.scatter(self.norm_rev(p), attn))
        l = l + self.drop_path(self.mlp_l(self.norm_mlp_l(l)))
        if return_attn:
            return p, l, attn
        return p, l


@MODELS.register_module()
class LookupViT(BaseModule):
    """LookupViT backbone (Koner et al., ECCV 2024) for classification and dense features.

    Args:
        arch: ``'tiny'``, ``'small'``, ``'base'``, ``'large'`` (ViT widths/depths/heads) or a dict
            with ``embed_dims``, ``num_layers``, ``num_heads`` and optionally ``mlp_ratio`` and
            ``lookup_mlp_ratio``.
        img_size: training image size (sets the size of the learned lookup position embedding;
            other sizes interpolate it bicubically).
        patch_size: lookup patch size (lookup grid = image / patch).
        in_channels: image channels.
        compressed_grid: the compressed token grid ``(h_p, w_p)``, or a list of grids for
            multi-resolution training (one drawn uniformly per training forward).
        test_compressed_grid: grid used in eval mode; default: the first of ``compressed_grid``.
            Change it at run time with :meth:`set_compressed_grid` or per call with
            ``forward(x, compressed_grid=...)``.
        out_indices: blocks whose outputs are returned (negative indices count from the end).
        out_type: ``'both'`` — mean of the pooled (final-normed) compressed and lookup tokens
            ``(B, D)``; ``'compressed'`` / ``'lookup'`` — one of them pooled ``(B, D)``;
            ``'featmap'`` — the lookup tokens as a map ``(B, D, h, w)`` (dense tasks);
            ``'compressed_featmap'`` — the compressed tokens as a map ``(B, D, h_p, w_p)``.
        final_norm: LayerNorm the token sets the output reads after the last block (applied to
            the last block's outputs only, as mmpretrain's ViT does).
        reverse_norm: normalisation of the reused map ``Aᵀ`` (see
            :class:`BidirectionalCrossAttention`).
        resize_antialias: antialiased bilinear resize for the compressed tokens (as
            ``jax.image.resize`` does by default when shrinking); False: plain bilinear.
        tokenizer: ``'patch'`` — a ``patch×patch`` stride-``patch`` convolution (ViT's, the
            paper's image setting); ``'conv'`` — a 3×3 convolution then ``log2(patch)`` 3×3
            stride-2 convolutions (BatchNorm + GELU between them), a convolutional tokenizer
            for small data (the paper states the block works with other tokenisations; used by
            the toy config).
        drop_rate, attn_drop_rate, drop_path_rate, qkv_bias: as in mmpretrain's ViT.
        init_cfg: e.g. ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
    """
    arch_zoo: Dict[str, dict] = {
        'tiny': dict(embed_dims=192, num_layers=12, num_heads=3),
        'small': dict(embed_dims=384, num_layers=12, num_heads=6),
        'base': dict(embed_dims=768, num_layers=12, num_heads=12),
        'large': dict(embed_dims=1024, num_layers=24, num_heads=16),
    }
    arch_keys = ('embed_dims', 'num_layers', 'num_heads')
    out_types = ('both', 'compressed', 'lookup', 'featmap', 'compressed_featmap')

    def __init__(self, arch: Union[str, dict] = 'base', img_size: GridLike = 224,
                 patch_size: int = 16, in_channels: int = 3,
                 compressed_grid: Union[GridLike, List[GridLike]] = (10, 10),
                 test_compressed_grid: Optional[GridLike] = None,
                 out_indices: Union[int, Sequence[int]] = -1, out_type: str = 'both',
                 final_norm: bool = True, reverse_norm: str = 'none',
                 resize_antialias: bool = True, tokenizer: str = 'patch',
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0., drop_path_rate: float = 0.,
                 qkv_bias: bool = True,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        arch = self._parse_arch(arch)
        self.arch = arch
        self.embed_dims = d = arch['embed_dims']
        self.num_layers = arch['num_layers']
        if out_type not in self.out_types:
            raise ValueError(f'LookupViT out_type must be one of {self.out_types}, '
                             f'got {out_type!r}')
        self.out_type = out_type
        self.out_indices = normalize_out_indices(out_indices, self.num_layers, 'layers')

        if isinstance(compressed_grid, (list, tuple)) and compressed_grid and \
                not isinstance(compressed_grid[0], int):
            grids = [_to_grid(g) for g in compressed_grid]
        else:
            grids = [_to_grid(compressed_grid)]
        self.train_grids: List[Tuple[int, int]] = grids
        self.test_compressed_grid = _to_grid(test_compressed_grid) if test_compressed_grid \
            is not None else grids[0]
        self.resize_antialias = resize_antialias

        self.img_size = _to_grid(img_size)
        self.patch_size = patch_size
        self.patch_grid = (self.img_size[0] // patch_size, self.img_size[1] // patch_size)
        if min(self.patch_grid) < 1:
            raise ValueError(f'img_size {img_size} is smaller than patch_size {patch_size}')
        self.patch_embed = self._tokenizer(tokenizer, in_channels, d, patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, d, *self.patch_grid))
        self.drop_after_pos = nn.Dropout(drop_rate)

        dpr = torch.linspace(0, drop_path_rate, self.num_layers).tolist()
        self.layers = nn.ModuleList([
            LookupViTBlock(d, arch['num_heads'], arch.get('mlp_ratio', 4.),
                           arch.get('lookup_mlp_ratio', 0.5), qkv_bias, drop_rate,
                           attn_drop_rate, dpr[i], reverse_norm)
            for i in range(self.num_layers)
        ])
        # final norms, only for the token sets the output reads (no unused parameters)
        self.final_norm = final_norm
        self.ln_p = nn.LayerNorm(d, eps=1e-6) if final_norm and out_type in (
            'both', 'compressed', 'compressed_featmap') else nn.Identity()
        self.ln_l = nn.LayerNorm(d, eps=1e-6) if final_norm and out_type in (
            'both', 'lookup', 'featmap') else nn.Identity()

    @staticmethod
    def _tokenizer(kind: str, in_channels: int, embed_dims: int, patch_size: int) -> nn.Module:
        if kind == 'patch':
            return nn.Conv2d(in_channels, embed_dims, patch_size, patch_size)
        if kind != 'conv':
            raise ValueError(f"LookupViT tokenizer must be 'patch' or 'conv', got {kind!r}")
        steps = int(round(math.log2(patch_size)))
        if patch_size < 2 or 2**steps != patch_size:
            raise ValueError(f"tokenizer='conv' needs a power-of-two patch_size >= 2, "
                             f'got {patch_size}')
        layers: List[nn.Module] = [nn.Conv2d(in_channels, embed_dims // 2, 3, 1, 1),
                                   nn.BatchNorm2d(embed_dims // 2), nn.GELU()]
        c = embed_dims // 2
        for i in range(steps):
            out = embed_dims if i == steps - 1 else embed_dims // 2
            layers.append(nn.Conv2d(c, out, 3, 2, 1))
            if i < steps - 1:
                layers += [nn.BatchNorm2d(out), nn.GELU()]
            c = out
        return nn.Sequential(*layers)

    @classmethod
    def _parse_arch(cls, arch: Union[str, dict]) -> dict:
        return resolve_arch('LookupViT', arch, cls.arch_zoo, cls.arch_keys)

    def init_weights(self) -> None:
        if self.init_cfg is not None:
            return super().init_weights()
        trunc_normal_(self.pos_embed, std=.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def set_compressed_grid(self, grid: GridLike) -> None:
        """Choose the compressed grid used in eval mode (same weights, another M)."""
        self.test_compressed_grid = _to_grid(grid)

    def current_grid(self) -> Tuple[int, int]:
        """The grid the next forward uses: a random training grid, or the test grid."""
        if self.training and len(self.train_grids) > 1:
            return self.train_grids[random.randrange(len(self.train_grids))]
        return self.train_grids[0] if self.training else self.test_compressed_grid

    def tokens(self, x: Tensor, compressed_grid: Optional[GridLike] = None
               ) -> Tuple[Tensor, Tensor, Tuple[int, int], Tuple[int, int]]:
        """Patchify, add the position embedding, resize. Returns ``(p, l, grid_p, grid_l)``."""
        if x.shape[-2] < self.patch_size or x.shape[-1] < self.patch_size:
            raise ValueError(f'LookupViT input {tuple(x.shape[-2:])} is smaller than one '
                             f'{self.patch_size}x{self.patch_size} patch')
        l = self.patch_embed(x)
        grid_l = tuple(l.shape[-2:])
        pos = self.pos_embed
        if grid_l != self.patch_grid:
            pos = F.interpolate(pos, size=grid_l, mode='bicubic', align_corners=False)
        l = l + pos
        grid_p = _to_grid(compressed_grid) if compressed_grid is not None else self.current_grid()
        p = F.interpolate(l, size=grid_p, mode='bilinear', align_corners=False,
                          antialias=self.resize_antialias)
        l = self.drop_after_pos(l.flatten(2).transpose(1, 2))
        p = self.drop_after_pos(p.flatten(2).transpose(1, 2))
        return p, l, grid_p, grid_l

    def _output(self, p: Tensor, l: Tensor, grid_p: Tuple[int, int],
                grid_l: Tuple[int, int]) -> Tensor:
        b, _, d = p.shape
        if self.out_type == 'both':
            return 0.5 * (p.mean(1) + l.mean(1))
        if self.out_type == 'compressed':
            return p.mean(1)
        if self.out_type == 'lookup':
            return l.mean(1)
        if self.out_type == 'featmap':
            return l.transpose(1, 2).reshape(b, d, *grid_l).contiguous()
        return p.transpose(1, 2).reshape(b, d, *grid_p).contiguous()

    def forward(self, x: Tensor, compressed_grid: Optional[GridLike] = None
                ) -> Tuple[Tensor, ...]:
        p, l, grid_p, grid_l = self.tokens(x, compressed_grid)
        outs = []
        for i, layer in enumerate(self.layers):
            p, l = layer(p, l)
            if i in self.out_indices:
                op, ol = p, l
                if i == self.num_layers - 1 and self.final_norm:
                    op, ol = self.ln_p(p), self.ln_l(l)
                outs.append(self._output(op, ol, grid_p, grid_l))
        return tuple(outs)


def vit_flops(embed_dims: int, num_layers: int, num_tokens: int, mlp_ratio: float = 4.,
              patch_flops: float = 0.) -> float:
    """Forward FLOPs (2 per multiply-add) of a plain ViT encoder on ``num_tokens`` tokens.

    Per layer: qkv + proj ``8ND²``, attention ``4N²D``, MLP ``4·r·ND²``. Norms, softmax, GELU
    and biases are not counted (as in ``torch.utils.flop_counter.FlopCounterMode``).
    """
    n, d = num_tokens, embed_dims
    per = 8 * n * d * d + 4 * n * n * d + 4 * mlp_ratio * n * d * d
    return num_layers * per + patch_flops


def lookupvit_flops(embed_dims: int, num_layers: int, num_lookup: int, num_compressed: int,
                    mlp_ratio: float = 4., lookup_mlp_ratio: float = 0.5,
                    patch_flops: float = 0.) -> float:
    """Forward FLOPs (2 per multiply-add) of a LookupViT encoder (N lookup, M compressed tokens).

    Per layer: ``MHBC_{l→p}`` (q and proj on M: ``4MD²``; k, v on N: ``4ND²``; ``QKᵀ`` and ``AV``:
    ``4MND``), the ViT block on M (:func:`vit_flops` with one layer), ``MHBC_{p→l}`` (v on M:
    ``2MD²``; proj on N: ``2ND²``; ``AᵀV``: ``2MND``) and the lookup MLP (``4·r_l·ND²``).
    Resizing to the compressed grid is not counted (interpolation is no matmul). This matches
    ``FlopCounterMode`` on :class:`LookupViT` exactly (see ``tests/test_models/test_lookupvit.py``).
    """
    n, m, d = num_lookup, num_compressed, embed_dims
    gather = 4 * m * d * d + 4 * n * d * d + 4 * m * n * d
    scatter = 2 * m * d * d + 2 * n * d * d + 2 * m * n * d
    per = gather + vit_flops(d, 1, m, mlp_ratio) + scatter + 4 * lookup_mlp_ratio * n * d * d
    return num_layers * per + patch_flops


def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def count_forward_flops(model: nn.Module, *inputs, **kwargs) -> int:
    """Forward FLOPs of ``model(*inputs, **kwargs)`` with ``torch.utils.flop_counter``.

    ``FlopCounterMode`` (torch 2.14) has no formula for the CPU kernel of
    ``F.scaled_dot_product_attention`` (``aten._scaled_dot_product_flash_attention_for_cpu``), so
    on CPU it silently counts 0 for every SDPA call (mmpretrain's ViT attention included). This
    helper adds that formula (``QKᵀ`` + ``AV`` matmuls, as for the CUDA kernels).
    """
    from torch.utils.flop_counter import FlopCounterMode
    aten = torch.ops.aten
    mapping = {}
    if hasattr(aten, '_scaled_dot_product_flash_attention_for_cpu'):
        mapping[aten._scaled_dot_product_flash_attention_for_cpu] = _cpu_sdpa_flop
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        model(*inputs, **kwargs)
    return counter.get_total_flops()
