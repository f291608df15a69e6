"""PPMA: Polyline Path Masked Attention for Vision Transformer (Zhao et al., NeurIPS 2025).

arXiv:2506.15940; official code: github.com/zhongchenzhao/PPMA. An RMT-style hierarchical ViT whose
attention logits carry a 2-D *polyline path* decay mask (see
:class:`mmmask.models.layers.PolylinePathBias`): a decay accumulated horizontally along the query's
row and then vertically along the key's column (and the reverse path), with input-dependent
per-token decays as in Mamba-2's selective scan. Two operators use the same mask:

* ``'whole'``: ``[½·softmax(QKᵀ + M) + ½·softmax(QKᵀ + Mᵀ)] V`` over all N tokens;
* ``'chunk'``: axial attention — one softmax per row with the row factor, one per column with the
  column factor — applied in both orders and averaged: ``½·A_h(A_w V) + ½·A_w(A_h V)``.

Everything inside the stages is channels-last ``(B, H, W, C)``, as in the official code, and the
numerics follow it (exact GELU, LayerNorm eps 1e-6 inside blocks and 1e-5 on outputs, keys scaled
by d^-½ before the rotary embedding, 1-D RoPE over the raster index with interleaved pairs).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor, nn

from ...registry import MODELS
from .base import FrozenStagesMixin, normalize_out_indices, resolve_arch
from ..layers.attention_bias import PolylinePathBias, PolylinePathDecay, biased_softmax


class DWConv2d(nn.Module):
    """Depthwise convolution on a channels-last tensor."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size, 1, kernel_size // 2,
                              groups=channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def raster_rope(hw: Tuple[int, int], head_dims: int, device=None,
                dtype=torch.float32) -> Tuple[Tensor, Tensor]:
    """PPMA's rotary tables: a 1-D RoPE over the raster index ``t = r·W + c`` of an H×W grid.

    Frequencies ``10000^-linspace(0, 1, d/2)`` (the linspace includes 1), each repeated for two
    adjacent channels. Returns ``(sin, cos)``, each ``(H, W, head_dims)``.
    """
    freq = 1.0 / (10000 ** torch.linspace(0, 1, head_dims // 2, device=device))
    freq = freq.repeat_interleave(2)
    index = torch.arange(hw[0] * hw[1], device=device, dtype=freq.dtype)
    angle = index[:, None] * freq[None, :]
    return (angle.sin().reshape(*hw, -1).to(dtype), angle.cos().reshape(*hw, -1).to(dtype))


def apply_rope(x: Tensor, sin: Tensor, cos: Tensor) -> Tensor:
    """Rotate channel pairs ``(a, b)`` by the tables: ``x·cos + (-b, a)·sin`` (interleaved form)."""
    rotated = torch.stack([-x[..., 1::2], x[..., ::2]], dim=-1).flatten(-2)
    return x * cos + rotated * sin


class PolylinePathAttention(nn.Module):
    """PPMA attention: q/k/v projections, RoPE, polyline path mask, LePE, output projection.

    Args:
        embed_dims: channels C.
        num_heads: attention heads.
        mode: ``'whole'`` (full attention, two L-paths each with its own softmax) or ``'chunk'``
            (axial, factorised normalisation).
    """
    modes = ('whole', 'chunk')

    def __init__(self, embed_dims: int, num_heads: int, mode: str = 'whole') -> None:
        super().__init__()
        if mode not in self.modes:
            raise ValueError(f'PolylinePathAttention mode must be one of {self.modes}, got {mode!r}')
        self.mode = mode
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.scale = self.head_dims**-0.5
        self.q_proj = nn.Linear(embed_dims, embed_dims)
        self.k_proj = nn.Linear(embed_dims, embed_dims)
        self.v_proj = nn.Linear(embed_dims, embed_dims)
        self.lepe = DWConv2d(embed_dims, 5)
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        self.path = PolylinePathDecay(embed_dims, num_heads)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            nn.init.xavier_normal_(proj.weight, gain=2**-2.5)
        nn.init.xavier_normal_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: Tensor, rope: Tuple[Tensor, Tensor],
                bias: Optional[PolylinePathBias] = None) -> Tensor:
        """``x``: ``(B, H, W, C)`` (the normalised block input); ``rope``: ``(sin, cos)`` tables.

        ``bias`` overrides the mask computed from ``x`` (for analysis tools).
        """
        b, hh, ww, c = x.shape
        sin, cos = rope
        v = self.v_proj(x)
        lepe = self.lepe(v)
        # (B, heads, H, W, d); keys are scaled before the rotation, logits are not rescaled.
        q = self.q_proj(x).view(b, hh, ww, self.num_heads, -1).permute(0, 3, 1, 2, 4)
        k = (self.k_proj(x) * self.scale).view(b, hh, ww, self.num_heads, -1).permute(0, 3, 1, 2, 4)
        v = v.view(b, hh, ww, self.num_heads, -1).permute(0, 3, 1, 2, 4)
        q, k = apply_rope(q, sin, cos), apply_rope(k, sin, cos)
        if bias is None:
            bias = self.path(x)
        if self.mode == 'whole':
            out = self._whole(q, k, v, bias)
        else:
            out = self._chunk(q, k, v, bias)
        return self.out_proj(out + lepe)

    @staticmethod
    def _whole(q: Tensor, k: Tensor, v: Tensor, bias: PolylinePathBias) -> Tensor:
        b, h, hh, ww, d = q.shape
        q, k, v = (t.reshape(b, h, hh * ww, d) for t in (q, k, v))
        logits = q @ k.transpose(-1, -2)
        # ½·softmax(QKᵀ+M)V + ½·softmax(QKᵀ+Mᵀ)V: each direction's N×N map is consumed before the
        # next one is built, so inference holds at most logits + one map + its biased logits.
        out = (biased_softmax(logits, bias) @ v).mul_(0.5)
        out = out.add_(biased_softmax(logits, bias, transpose=True) @ v, alpha=0.5)
        return out.transpose(1, 2).reshape(b, hh, ww, h * d)

    @staticmethod
    def _chunk(q: Tensor, k: Tensor, v: Tensor, bias: PolylinePathBias) -> Tensor:
        b, h, hh, ww, d = q.shape
        row, col = bias.axial()  # (B, H, heads, W, W), (B, W, heads, H, H)
        # along rows: (B, H, heads, W, d)
        q_w, k_w, v_w = (t.transpose(1, 2) for t in (q, k, v))
        attn_w = (q_w @ k_w.transpose(-1, -2) + row.to(q.dtype)).softmax(-1)
        # along columns: (B, W, heads, H, d)
        q_h, k_h, v_h = (t.permute(0, 3, 1, 2, 4) for t in (q, k, v))
        attn_h = (q_h @ k_h.transpose(-1, -2) + col.to(q.dtype)).softmax(-1)
        # rows first, then columns: result (B, W, heads, H, d) -> (B, H, W, heads, d)
        first = attn_h @ (attn_w @ v_w).permute(0, 3, 2, 1, 4)
        first = first.permute(0, 3, 1, 2, 4)
        # columns first, then rows: result (B, H, heads, W, d) -> (B, H, W, heads, d)
        second = attn_w @ (attn_h @ v_h).permute(0, 3, 2, 1, 4)
        second = second.permute(0, 1, 3, 2, 4)
        return (0.5 * first + 0.5 * second).flatten(-2)


class ConvFFN(nn.Module):
    """fc1 → GELU → ``h + DWConv3×3(h)`` → fc2 (channels-last)."""

    def __init__(self, embed_dims: int, hidden_dims: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.dwconv = DWConv2d(hidden_dims, 3)
        self.fc2 = nn.Linear(hidden_dims, embed_dims)

    def forward(self, x: Tensor) -> Tensor:
        h = F.gelu(self.fc1(x))
        return self.fc2(h + self.dwconv(h))


class PPMABlock(nn.Module):
    """``x += DWConv(x)``; ``x += γ₁·Attn(LN(x))``; ``x += γ₂·FFN(LN(x))`` (γ only with layer scale)."""

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float, mode: str,
                 drop_path: float = 0., layer_scale: Optional[float] = None) -> None:
        super().__init__()
        self.cpe = DWConv2d(embed_dims, 3)
        self.ln1 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.attn = PolylinePathAttention(embed_dims, num_heads, mode)
        self.ln2 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.ffn = ConvFFN(embed_dims, int(mlp_ratio * embed_dims))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        if layer_scale is not None:
            self.gamma1 = nn.Parameter(torch.full((1, 1, 1, embed_dims), float(layer_scale)))
            self.gamma2 = nn.Parameter(torch.full((1, 1, 1, embed_dims), float(layer_scale)))
        else:
            self.gamma1 = self.gamma2 = None

    def forward(self, x: Tensor, rope: Tuple[Tensor, Tensor]) -> Tensor:
        x = x + self.cpe(x)
        y = self.attn(self.ln1(x), rope)
        x = x + self.drop_path(y if self.gamma1 is None else self.gamma1 * y)
        y = self.ffn(self.ln2(x))
        return x + self.drop_path(y if self.gamma2 is None else self.gamma2 * y)


class PPMAStage(nn.Module):
    """Blocks at one resolution, then (except the last stage) conv3×3-s2 + BN downsampling."""

    def __init__(self, embed_dims: int, out_dims: Optional[int], depth: int, num_heads: int,
                 mlp_ratio: float, mode: str, drop_paths: Sequence[float],
                 layer_scale: Optional[float], with_cp: bool = False) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.with_cp = with_cp
        self.blocks = nn.ModuleList([
            PPMABlock(embed_dims, num_heads, mlp_ratio, mode, drop_paths[i], layer_scale)
            for i in range(depth)
        ])
        self.downsample = None
        if out_dims is not None:
            self.downsample = nn.Sequential(
                nn.Conv2d(embed_dims, out_dims, 3, 2, 1), nn.BatchNorm2d(out_dims))

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Returns ``(stage output before downsampling, input of the next stage)``, channels-last."""
        rope = raster_rope(x.shape[1:3], self.head_dims, x.device, x.dtype)
        for block in self.blocks:
            if self.with_cp and x.requires_grad:
                x = cp.checkpoint(block, x, rope, use_reentrant=False)
            else:
                x = block(x, rope)
        if self.downsample is None:
            return x, x
        return x, self.downsample(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


@MODELS.register_module()
class PPMA(FrozenStagesMixin, BaseModule):
    """PPMA backbone (tiny/small/base as published), for classification, segmentation, detection.

    Args:
        arch: ``'tiny'``, ``'small'``, ``'base'``, or a dict with ``embed_dims``, ``depths``,
            ``num_heads``, ``mlp_ratios``, ``modes`` (``'chunk'``/``'whole'`` per stage),
            ``layer_scales`` (None or the initial value per stage) and optionally
            ``drop_path_rate``.
        in_channels: input image channels.
        out_indices: stages whose outputs are returned (NCHW, strides 4/8/16/32).
        out_norm: LayerNorm (eps 1e-5) each returned output, as the official dense-prediction
            backbone does; the classification model uses the raw last stage (``False``).
        drop_path_rate: stochastic depth, linearly increasing over blocks; None takes the arch's.
        frozen_stages: freeze the stem and the first ``frozen_stages`` stages (-1: none).
        norm_eval: keep BatchNorm layers in eval mode while training.
        with_cp: gradient checkpointing of the blocks.
        size_divisor: if set, inputs whose height/width are not multiples of it are zero-padded at
            the bottom/right (``pad_input=True``) or rejected with an error (``pad_input=False``).
            None (default) accepts any size, as the official code does.
        init_cfg: e.g. ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
    """
    arch_zoo: Dict[str, dict] = {
        'tiny': dict(embed_dims=[64, 128, 256, 512], depths=[2, 2, 8, 2], num_heads=[4, 4, 8, 16],
                     mlp_ratios=[3, 3, 3, 3], modes=['chunk', 'chunk', 'whole', 'whole'],
                     layer_scales=[None] * 4, drop_path_rate=0.1),
        'small': dict(embed_dims=[64, 128, 256, 512], depths=[3, 4, 18, 4],
                      num_heads=[4, 4, 8, 16], mlp_ratios=[4, 4, 3, 3],
                      modes=['chunk', 'chunk', 'chunk', 'whole'], layer_scales=[None] * 4,
                      drop_path_rate=0.15),
        'base': dict(embed_dims=[80, 160, 320, 512], depths=[4, 8, 25, 8],
                     num_heads=[5, 5, 10, 16], mlp_ratios=[4, 4, 3, 3],
                     modes=['chunk', 'chunk', 'chunk', 'whole'],
                     layer_scales=[None, None, 1e-6, 1e-6], drop_path_rate=0.4),
    }
    arch_keys = ('embed_dims', 'depths', 'num_heads', 'mlp_ratios', 'modes', 'layer_scales')

    def __init__(self, arch: Union[str, dict] = 'tiny', in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3), out_norm: bool = True,
                 drop_path_rate: Optional[float] = None, frozen_stages: int = -1,
                 norm_eval: bool = False, with_cp: bool = False,
                 size_divisor: Optional[int] = None, pad_input: bool = True,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        arch = self._parse_arch(arch)
        self.arch = arch
        self.embed_dims = list(arch['embed_dims'])
        num_stages = len(self.embed_dims)
        self.out_indices = normalize_out_indices(out_indices, num_stages)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.size_divisor = size_divisor
        self.pad_input = pad_input
        if drop_path_rate is None:
            drop_path_rate = arch.get('drop_path_rate', 0.1)

        c0 = self.embed_dims[0]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c0 // 2, 3, 2, 1), nn.BatchNorm2d(c0 // 2), nn.GELU(),
            nn.Conv2d(c0 // 2, c0 // 2, 3, 1, 1), nn.BatchNorm2d(c0 // 2), nn.GELU(),
            nn.Conv2d(c0 // 2, c0, 3, 2, 1), nn.BatchNorm2d(c0), nn.GELU(),
            nn.Conv2d(c0, c0, 3, 1, 1), nn.BatchNorm2d(c0))
        depths = arch['depths']
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        for i in range(num_stages):
            self.stages.append(PPMAStage(
                self.embed_dims[i], self.embed_dims[i + 1] if i + 1 < num_stages else None,
                depths[i], arch['num_heads'][i], arch['mlp_ratios'][i], arch['modes'][i],
                dpr[sum(depths[:i]):sum(depths[:i + 1])], arch['layer_scales'][i], with_cp))
        self.out_norm = out_norm
        if out_norm:
            for i in self.out_indices:
                self.add_module(f'norm{i}', nn.LayerNorm(self.embed_dims[i]))
        self._freeze_stages()

    @classmethod
    def _parse_arch(cls, arch: Union[str, dict]) -> dict:
        arch = resolve_arch('PPMA', arch, cls.arch_zoo, cls.arch_keys, per_stage=True)
        for mode in arch['modes']:
            if mode not in PolylinePathAttention.modes:
                raise ValueError(f'PPMA arch: mode {mode!r} not in {PolylinePathAttention.modes}')
        return arch

    def init_weights(self) -> None:
        if self.init_cfg is not None:
            return super().init_weights()
        # the official init (applied last there, so it overrides the attention's xavier init):
        # trunc-normal(0.02) Linear weights with zero bias, unit LayerNorms.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        modules = [self.stem] + [self.stages[i] for i in range(self.frozen_stages)]
        for i in range(self.frozen_stages):
            if i in self.out_indices and self.out_norm:
                modules.append(getattr(self, f'norm{i}'))
        for m in modules:
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def _check_size(self, x: Tensor) -> Tensor:
        if self.size_divisor is None:
            return x
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.size_divisor, (-w) % self.size_divisor
        if not ph and not pw:
            return x
        if not self.pad_input:
            raise ValueError(
                f'PPMA input {h}x{w} is not divisible by size_divisor={self.size_divisor}. '
                f'Pad it in the data preprocessor (size_divisor={self.size_divisor}), or build '
                'the backbone with pad_input=True.')
        return F.pad(x, (0, pw, 0, ph))

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x = self._check_size(x)
        x = self.stem(x).permute(0, 2, 3, 1)
        outs = []
        for i, stage in enumerate(self.stages):
            out, x = stage(x)
            if i in self.out_indices:
                if self.out_norm:
                    out = getattr(self, f'norm{i}')(out)
                outs.append(out.permute(0, 3, 1, 2).contiguous())
        return tuple(outs)
