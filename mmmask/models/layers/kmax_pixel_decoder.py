"""kMaX-DeepLab pixel decoder (Yu et al., "k-means Mask Transformer", ECCV 2022).

The decoder walks from stride 32 to stride 4. Each stage fuses the previous stage's output with
one backbone level (``ResizedFuse``) and refines the result with a group of residual blocks:
axial-attention blocks (Axial-DeepLab, Wang et al., ECCV 2020) at strides 32 and 16, bottleneck
blocks at strides 8 and 4. The numerics follow deeplab2 / the bytedance PyTorch port: BN with eps
1e-3 and momentum 0.01, exact (erf) GELU, activation at block *entry*, zero-initialised last BN of
every residual branch, and position-sensitive axial attention whose similarity and output terms are
each batch-normalised before being summed.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from mmpretrain.models.utils import LayerNorm2d  # channels-first LN: kMaX's ``in_norm``
from torch import Tensor

from mmmask.registry import MODELS

_DEFAULT_NORM = dict(type='BN', eps=1e-3, momentum=0.01)


def _trunc_normal_(tensor: Tensor, std: float) -> Tensor:
    """Zero-mean normal truncated at two standard deviations (TF ``TruncatedNormal``)."""
    return nn.init.trunc_normal_(tensor, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)


def _he_normal_(weight: Tensor) -> Tensor:
    """He-normal init of a conv kernel as a truncated normal, std ``sqrt(2 / fan_in)``."""
    fan_in = weight.shape[1] * math.prod(weight.shape[2:])
    return _trunc_normal_(weight, math.sqrt(2.0 / fan_in))


def _norm(norm_cfg: dict, channels: int, gamma: float = 1.0) -> nn.Module:
    """Builds a norm layer and sets its affine scale to ``gamma`` (bias stays 0)."""
    layer = build_norm_layer(norm_cfg, channels)[1]
    if getattr(layer, 'weight', None) is not None:
        nn.init.constant_(layer.weight, gamma)
    if getattr(layer, 'bias', None) is not None:
        nn.init.zeros_(layer.bias)
    return layer


def _norm_1d(norm: nn.Module, x: Tensor) -> Tensor:
    """Applies a 2-D batch norm (``BN``/``SyncBN``) to an ``(N, C, L)`` tensor."""
    return norm(x.unsqueeze(-1)).squeeze(-1)


class ConvNorm(nn.Sequential):
    """``conv (no bias) -> norm``; He-normal kernel, norm scale initialised to ``gamma``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1,
                 norm_cfg: dict = _DEFAULT_NORM, gamma: float = 1.0) -> None:
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                         bias=False)
        _he_normal_(conv.weight)
        super().__init__()
        self.conv = conv
        self.bn = _norm(norm_cfg, out_channels, gamma)


def relative_distance_index(length: int, max_span: int = 255,
                            device: Optional[torch.device] = None) -> Tensor:
    """``(L, L)`` long tensor whose ``[q, k]`` entry is ``k - q + max_span - 1``.

    Entries lie in ``[max_span - L, max_span + L - 2]`` and index an RPE table of
    ``2 * max_span - 1`` rows (Axial-DeepLab global axial attention: queries and keys span the
    same axis).
    """
    if length > max_span:
        raise ValueError(f'Axial attention length {length} exceeds max_span={max_span}; the '
                         f'relative positional encoding only covers |k - q| < {max_span}. '
                         f'Use a smaller input or a larger max_span.')
    pos = torch.arange(length, device=device)
    return pos[None, :] - pos[:, None] + (max_span - 1)


class RelativePositionalEncoding(nn.Module):
    """A learnable table of ``2 * max_span - 1`` embeddings, gathered by relative distance.

    The table is shared by all heads (as in Axial-DeepLab). The gather index is computed from the
    runtime length and cached per ``(length, device)``; it is not part of the state dict.
    """

    def __init__(self, depth: int, max_span: int = 255, init_std: float = 1.0) -> None:
        super().__init__()
        self.depth = depth
        self.max_span = max_span
        self.embedding = nn.Parameter(torch.empty(2 * max_span - 1, depth))
        _trunc_normal_(self.embedding, init_std)
        self._index_cache: Dict[Tuple[int, str], Tensor] = {}

    def index(self, length: int, device: torch.device) -> Tensor:
        """Cached :func:`relative_distance_index` for ``length`` on ``device``."""
        key = (int(length), str(device))
        idx = self._index_cache.get(key)
        if idx is None:
            idx = relative_distance_index(length, self.max_span, device)
            self._index_cache[key] = idx
        return idx

    def forward(self, length: int) -> Tensor:
        """Returns the ``(L, L, depth)`` embeddings ``E[q, k] = table[k - q + max_span - 1]``."""
        idx = self.index(length, self.embedding.device)
        return self.embedding[idx.reshape(-1)].reshape(length, length, self.depth)


class AxialAttention1d(BaseModule):
    """Global position-sensitive self-attention along one axis of an ``(N, C, L)`` input.

    Axial-DeepLab (Wang et al., ECCV 2020): a 1x1 projection with BN gives ``q, k, v``; the logits
    are the batch-normalised content (``q.k``), query-RPE (``q.r_q``) and key-RPE (``k.r_k``) terms,
    summed; the fp32 softmax over keys retrieves the values and the value RPEs, which are again
    batch-normalised separately and summed. Output: ``(N, value_channels, L)``.
    """

    def __init__(self, in_channels: int, key_channels: int, value_channels: int,
                 num_heads: int = 8, max_span: int = 255, norm_cfg: dict = _DEFAULT_NORM,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if key_channels % num_heads or value_channels % num_heads:
            raise ValueError(f'key_channels ({key_channels}) and value_channels ({value_channels}) '
                             f'must be divisible by num_heads ({num_heads})')
        self.in_channels = in_channels
        self.key_channels = key_channels
        self.value_channels = value_channels
        self.num_heads = num_heads
        self.max_span = max_span
        qkv_channels = 2 * key_channels + value_channels
        self.qkv = nn.Conv1d(in_channels, qkv_channels, 1, bias=False)
        _trunc_normal_(self.qkv.weight, in_channels ** -0.5)
        self.qkv_norm = _norm(norm_cfg, qkv_channels)
        self.query_rpe = RelativePositionalEncoding(key_channels // num_heads, max_span)
        self.key_rpe = RelativePositionalEncoding(key_channels // num_heads, max_span)
        self.value_rpe = RelativePositionalEncoding(value_channels // num_heads, max_span)
        self.similarity_norm = _norm(norm_cfg, 3 * num_heads)
        self.output_norm = _norm(norm_cfg, 2 * value_channels)

    def forward(self, x: Tensor) -> Tensor:
        n, _, length = x.shape
        if length > self.max_span:
            raise ValueError(f'Axial attention length {length} exceeds max_span={self.max_span}')
        h = self.num_heads
        qkv = _norm_1d(self.qkv_norm, self.qkv(x))
        q, k, v = qkv.split([self.key_channels, self.key_channels, self.value_channels], dim=1)
        q = q.reshape(n, h, -1, length)
        k = k.reshape(n, h, -1, length)
        v = v.reshape(n, h, -1, length)

        r_q = self.query_rpe(length).to(q.dtype)
        r_k = self.key_rpe(length).to(k.dtype)
        logits = torch.cat([
            torch.einsum('nhdl,nhdm->nhlm', q, k),      # content
            torch.einsum('nhdl,lmd->nhlm', q, r_q),     # query-RPE
            torch.einsum('nhdm,lmd->nhlm', k, r_k),     # key-RPE
        ], dim=1)
        logits = self.similarity_norm(logits).reshape(n, 3, h, length, length).sum(dim=1)
        weights = F.softmax(logits.float(), dim=-1).to(v.dtype)

        r_v = self.value_rpe(length).to(v.dtype)
        out = torch.cat([
            torch.einsum('nhlm,nhdm->nhdl', weights, v),     # retrieved content
            torch.einsum('nhlm,lmd->nhdl', weights, r_v),    # retrieved value-RPE
        ], dim=1).reshape(n, 2 * self.value_channels, length)
        out = _norm_1d(self.output_norm, out)
        return out.reshape(n, 2, self.value_channels, length).sum(dim=1)


class AxialAttention2d(BaseModule):
    """Height-axis then width-axis :class:`AxialAttention1d` (Axial-DeepLab).

    Input ``(N, in_channels, H, W)``, output ``(N, value_channels, H, W)``; the width-axis layer
    reads the ``value_channels`` output of the height-axis layer.
    """

    def __init__(self, in_channels: int, key_channels: int, value_channels: int,
                 num_heads: int = 8, max_span: int = 255, norm_cfg: dict = _DEFAULT_NORM,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.value_channels = value_channels
        self.height_axis = AxialAttention1d(in_channels, key_channels, value_channels, num_heads,
                                            max_span, norm_cfg)
        self.width_axis = AxialAttention1d(value_channels, key_channels, value_channels,
                                           num_heads, max_span, norm_cfg)

    def forward(self, x: Tensor) -> Tensor:
        n, c, hgt, wid = x.shape
        cv = self.value_channels
        # columns: (N, C, H, W) -> (N*W, C, H)
        x = x.permute(0, 3, 1, 2).reshape(n * wid, c, hgt)
        x = self.height_axis(x)
        # rows: (N*W, Cv, H) -> (N*H, Cv, W)
        x = x.reshape(n, wid, cv, hgt).permute(0, 3, 2, 1).reshape(n * hgt, cv, wid)
        x = self.width_axis(x)
        return x.reshape(n, hgt, cv, wid).permute(0, 2, 1, 3).contiguous()


class KMaXBlock(BaseModule):
    """One kMaX / Axial-DeepLab residual block with ``4 * base_channels`` output channels.

    ``x = GELU(x)`` at entry; shortcut = ``x`` or a 1x1 conv + BN projection; the residual branch is
    ``1x1 conv-BN-GELU -> (axial attention -> GELU | 3x3 conv-BN-GELU) -> 1x1 conv-BN(gamma=0)``;
    the output ``DropPath(branch) + shortcut`` is not activated. ``'axial'`` expands the first
    1x1 to ``2f`` and the attention uses ``f`` key / ``2f`` value channels; ``'bottleneck'``
    keeps ``f``.
    """

    def __init__(self, in_channels: int, base_channels: int, block_type: str = 'axial',
                 num_heads: int = 8, max_span: int = 255, drop_path_rate: float = 0.0,
                 norm_cfg: dict = _DEFAULT_NORM, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        block_type = block_type.lower()
        if block_type not in ('axial', 'bottleneck'):
            raise ValueError(f"block_type must be 'axial' or 'bottleneck', got {block_type!r}")
        f = base_channels
        self.block_type = block_type
        self.in_channels = in_channels
        self.out_channels = 4 * f
        self.act = nn.GELU()
        if block_type == 'axial':
            self.conv1 = ConvNorm(in_channels, 2 * f, 1, norm_cfg)
            self.attention = AxialAttention2d(2 * f, f, 2 * f, num_heads, max_span, norm_cfg)
            mid = 2 * f
        else:
            self.conv1 = ConvNorm(in_channels, f, 1, norm_cfg)
            self.conv2 = ConvNorm(f, f, 3, norm_cfg)
            mid = f
        self.conv3 = ConvNorm(mid, 4 * f, 1, norm_cfg, gamma=0.0)
        self.shortcut = (ConvNorm(in_channels, 4 * f, 1, norm_cfg)
                         if in_channels != 4 * f else nn.Identity())
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(x)
        shortcut = self.shortcut(x)
        y = self.act(self.conv1(x))
        if self.block_type == 'axial':
            y = self.act(self.attention(y))
        else:
            y = self.act(self.conv2(y))
        y = self.conv3(y)
        return self.drop_path(y) + shortcut


class ResizedFuse(BaseModule):
    """Sums a low-resolution decoder feature and a high-resolution backbone feature.

    Each input whose channels differ from ``out_channels`` goes through ``GELU -> 1x1 conv -> BN``;
    the low-resolution one is then bilinearly resized to the high-resolution size. No activation on
    the sum. ``align_corners=None`` uses the reference rule: ``True`` iff the low-res width is odd.
    """

    def __init__(self, low_in_channels: int, high_in_channels: int, out_channels: int,
                 norm_cfg: dict = _DEFAULT_NORM, align_corners: Optional[bool] = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.align_corners = align_corners
        self.act = nn.GELU()
        self.low_proj = (ConvNorm(low_in_channels, out_channels, 1, norm_cfg)
                         if low_in_channels != out_channels else None)
        self.high_proj = (ConvNorm(high_in_channels, out_channels, 1, norm_cfg)
                          if high_in_channels != out_channels else None)

    def forward(self, low: Tensor, high: Tensor) -> Tensor:
        align = self.align_corners
        if align is None:
            align = low.shape[-1] % 2 == 1
        if self.low_proj is not None:
            low = self.low_proj(self.act(low))
        low = F.interpolate(low, size=high.shape[2:], mode='bilinear', align_corners=align)
        if self.high_proj is not None:
            high = self.high_proj(self.act(high))
        return low + high


@MODELS.register_module()
class KMaXPixelDecoder(BaseModule):
    """kMaX-DeepLab pixel decoder (Yu et al., ECCV 2022).

    Stage 0 refines ``in_norm(res5)``; stage ``i > 0`` refines
    ``ResizedFuse(stage_{i-1}, in_norm(res_{5-i}))`` with ``dims[i]`` channels. Stage ``i`` is
    ``num_blocks[i]`` :class:`KMaXBlock` s of type ``block_types[i]`` with ``4 * dims[i]`` output
    channels. ``in_norm`` is a channels-first LayerNorm (eps 1e-6) per backbone level; pass
    ``in_norm=False`` when the backbone already normalises its outputs (mmpretrain ConvNeXt).

    Args:
        in_channels: backbone channels at strides 4, 8, 16, 32 (res2..res5).
        dims: base channels per stage, OS32 -> OS4.
        num_blocks: blocks per stage.
        block_types: ``'axial'`` or ``'bottleneck'`` per stage.
        num_heads: axial-attention heads.
        max_span: RPE span; every axis length must be ``<= max_span``.
        drop_path_rate: the same drop-path probability for every block (as in kMaX).
        in_norm: apply the channels-first LayerNorm to the backbone features.
        norm_cfg: batch-norm config (reference: eps 1e-3, momentum 0.01, SyncBN when distributed).
        align_corners: for the bilinear resizes; ``None`` = reference rule (odd low-res width).
    """

    def __init__(self, in_channels: Sequence[int],
                 dims: Sequence[int] = (512, 256, 128, 64),
                 num_blocks: Sequence[int] = (1, 5, 1, 1),
                 block_types: Sequence[str] = ('axial', 'axial', 'bottleneck', 'bottleneck'),
                 num_heads: int = 8, max_span: int = 255, drop_path_rate: float = 0.0,
                 in_norm: bool = True,
                 norm_cfg: dict = dict(type='BN', eps=1e-3, momentum=0.01),
                 align_corners: Optional[bool] = False, init_cfg=None) -> None:
        super().__init__(init_cfg)
        for name, seq in (('in_channels', in_channels), ('dims', dims),
                          ('num_blocks', num_blocks), ('block_types', block_types)):
            if len(seq) != 4:
                raise ValueError(f'{name} must have 4 entries (strides 4, 8, 16, 32 / '
                                 f'OS32 -> OS4), got {len(seq)}: {tuple(seq)}')
        self.in_channels = tuple(int(c) for c in in_channels)
        self.dims = tuple(int(d) for d in dims)
        self.out_channels: Tuple[int, ...] = tuple(4 * d for d in self.dims)
        self.use_in_norm = in_norm
        # OS32 -> OS4 order (res5, res4, res3, res2)
        top_down = self.in_channels[::-1]
        self.in_norms = nn.ModuleList(
            [LayerNorm2d(c, eps=1e-6) if in_norm else nn.Identity() for c in top_down])
        self.stages = nn.ModuleList()
        self.resized_fuses = nn.ModuleList()
        for i in range(4):
            if num_blocks[i] < 1:
                raise ValueError(f'num_blocks must be >= 1, got {tuple(num_blocks)}')
            if i > 0:
                self.resized_fuses.append(ResizedFuse(self.out_channels[i - 1], top_down[i],
                                                      self.dims[i], norm_cfg, align_corners))
            blocks = []
            cin = top_down[0] if i == 0 else self.dims[i]
            for _ in range(num_blocks[i]):
                blocks.append(KMaXBlock(cin, self.dims[i], block_types[i], num_heads, max_span,
                                        drop_path_rate, norm_cfg))
                cin = self.out_channels[i]
            self.stages.append(nn.Sequential(*blocks))

    def forward(self, feats: Sequence[Tensor]) -> Tuple[List[Tensor], Tensor, List[Tensor]]:
        """feats: backbone outputs at strides 4, 8, 16, 32 (res2..res5).

        Returns ``(multi_scale, os4, semantic)``: ``multi_scale = [OS32, OS16, OS8]`` decoder
        features (``out_channels[0..2]``), ``os4`` the OS4 decoder feature (``out_channels[3]``),
        and ``semantic = [res5, res3, res2]``, the raw (pre-``in_norm``) backbone features for the
        auxiliary semantic head.
        """
        if len(feats) != 4:
            raise ValueError(f'KMaXPixelDecoder expects 4 backbone features (strides 4, 8, 16, '
                             f'32), got {len(feats)}')
        for i, (f, c) in enumerate(zip(feats, self.in_channels)):
            if f.dim() != 4 or f.shape[1] != c:
                raise ValueError(f'feature {i} (stride {4 * 2 ** i}) has shape {tuple(f.shape)}, '
                                 f'expected (N, {c}, H, W) from in_channels={self.in_channels}')
        top_down = list(feats)[::-1]  # res5, res4, res3, res2
        outs = []
        x = self.in_norms[0](top_down[0])
        for i in range(4):
            if i > 0:
                x = self.resized_fuses[i - 1](x, self.in_norms[i](top_down[i]))
            x = self.stages[i](x)
            outs.append(x)
        semantic = [top_down[0], top_down[2], top_down[3]]
        return outs[:3], outs[3], semantic
