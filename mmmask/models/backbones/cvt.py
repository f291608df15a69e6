"""CvT: Introducing Convolutions to Vision Transformers (Wu et al., ICCV 2021).

arXiv:2103.15808; official code: github.com/leoxiaobin/CvT (``lib/models/cls_cvt.py``). A
three-stage hierarchy; each stage starts with a *convolutional token embedding* (a strided Conv2d
followed by a LayerNorm over channels) and runs pre-norm transformer blocks whose attention uses a
*convolutional projection*: queries, keys and values are each taken from the token map by a
depthwise k×k convolution + BatchNorm (keys/values with stride 2, so they have 4× fewer tokens)
before the usual linear projections. There is no positional embedding, so any input size works.
A CLS token exists only in the last stage; it skips the convolutional projection (it is prepended,
unprojected, to q, k and v).

Numerics reproduced from the official code (parity fixtures in ``tests/data/parity/cvt``):

* the attention scale is ``embed_dims ** -0.5`` — the whole stage width, not the head width;
* the MLP activation is QuickGELU ``x·σ(1.702x)``; every LayerNorm (eps 1e-5) is computed in fp32;
* the ``'avg'`` projection method: no projection for q, ``AvgPool2d(ceil_mode=True)`` for k/v;
* stochastic depth ramps linearly from 0 within *each stage* to that stage's rate;
* the classification feature is ``norm(cls)`` of the last stage, or, without a CLS token, the
  mean over the tokens of ``norm(map)``. The official head ``torch.squeeze``-s that feature, which
  also drops the batch axis of a batch of one; we keep ``(B, C)`` always (mmpretrain heads and
  losses need the batch axis).
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor, nn

from ...registry import MODELS
from ..layers.attention_bias import LogitBias, biased_softmax
from .base import FrozenStagesMixin, normalize_out_indices

__all__ = ['CvT', 'CvTAttention', 'CvTBlock', 'CvTStage', 'ConvEmbed', 'ConvProjection',
           'QuickGELU', 'FP32LayerNorm', 'cvt_attention_flops']


class QuickGELU(nn.Module):
    """``x · sigmoid(1.702 x)`` (the CLIP-style GELU approximation CvT trains with)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


class FP32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 and cast back to the input dtype (mixed-precision safe)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.float()).to(x.dtype)


class ConvEmbed(nn.Module):
    """Convolutional token embedding: Conv2d(k, stride, padding) → LayerNorm over channels.

    Input and output are NCHW maps.
    """

    def __init__(self, in_channels: int, embed_dims: int, kernel_size: int, stride: int,
                 padding: int) -> None:
        super().__init__()
        self.projection = nn.Conv2d(in_channels, embed_dims, kernel_size, stride, padding)
        self.norm = FP32LayerNorm(embed_dims, eps=1e-5)

    def forward(self, x: Tensor) -> Tensor:
        x = self.projection(x)
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvProjection(nn.Module):
    """Token map → projected tokens, one of CvT's ``QKV_PROJ_METHOD`` s.

    * ``'dw_bn'``: depthwise Conv2d(k, stride, padding, no bias) → BatchNorm2d (keys ``conv``,
      ``bn``);
    * ``'avg'``: AvgPool2d(k, stride, padding, ceil_mode=True), no parameters;
    * ``'identity'``: the map's tokens unchanged (the query of the ``'avg'`` method).

    ``forward`` takes ``(B, C, H, W)`` and returns ``(B, H'·W', C)`` tokens in row-major order.
    """
    methods = ('dw_bn', 'avg', 'identity')

    def __init__(self, channels: int, method: str, kernel_size: int = 3, stride: int = 1,
                 padding: int = 1) -> None:
        super().__init__()
        if method not in self.methods:
            raise ValueError(f'CvT projection method must be one of {self.methods}, got {method!r}')
        self.method = method
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        if method == 'dw_bn':
            self.conv = nn.Conv2d(channels, channels, kernel_size, stride, padding, bias=False,
                                  groups=channels)
            self.bn = nn.BatchNorm2d(channels)
        elif method == 'avg':
            self.pool = nn.AvgPool2d(kernel_size, stride, padding, ceil_mode=True)

    def out_size(self, hw: Tuple[int, int]) -> Tuple[int, int]:
        """The projected grid size for an input grid ``hw``."""
        if self.method == 'identity':
            return hw
        k, s, p = self.kernel_size, self.stride, self.padding
        if self.method == 'dw_bn':
            return tuple((n + 2 * p - k) // s + 1 for n in hw)
        out = []
        for n in hw:  # ceil_mode pooling; the last window must start inside the padded input
            o = math.ceil((n + 2 * p - k) / s) + 1
            if (o - 1) * s >= n + p:
                o -= 1
            out.append(o)
        return tuple(out)

    def forward(self, x: Tensor) -> Tensor:
        if self.method == 'dw_bn':
            x = self.bn(self.conv(x))
        elif self.method == 'avg':
            x = self.pool(x)
        return x.flatten(2).transpose(1, 2)


class CvTAttention(nn.Module):
    """Multi-head attention with convolutional q/k/v projections (CvT §3.2).

    The map part of the tokens is reshaped to ``(B, C, H, W)``, projected by :class:`ConvProjection`
    (q with ``stride_q``, k and v with ``stride_kv``); the ``num_extra_tokens`` leading tokens (the
    CLS token) are prepended to each *unprojected*. Then Linear ``proj_q/k/v``, softmax attention
    with scale ``qk_scale`` (default ``embed_dims ** -0.5``, the official quirk — the full width,
    not the head width), and the output Linear ``proj``.

    Args:
        embed_dims: channels C.
        num_heads: heads (C must be divisible).
        qkv_bias: bias of ``proj_q/k/v``.
        method: ``'dw_bn'`` or ``'avg'`` (the query then gets no spatial projection).
        kernel_size, stride_kv, stride_q, padding_kv, padding_q: the spatial projections.
        num_extra_tokens: leading tokens that bypass the spatial projection (1 with a CLS token).
        attn_drop, proj_drop: dropout rates.
        qk_scale: override the logit scale (None: ``embed_dims ** -0.5``, as published).
    """

    def __init__(self, embed_dims: int, num_heads: int, qkv_bias: bool = True,
                 method: str = 'dw_bn', kernel_size: int = 3, stride_kv: int = 2,
                 stride_q: int = 1, padding_kv: int = 1, padding_q: int = 1,
                 num_extra_tokens: int = 0, attn_drop: float = 0., proj_drop: float = 0.,
                 qk_scale: Optional[float] = None) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'CvT: embed_dims {embed_dims} is not divisible by num_heads '
                             f'{num_heads}')
        if method not in ('dw_bn', 'avg'):
            raise ValueError(f"CvT qkv_proj_method must be 'dw_bn' or 'avg', got {method!r} "
                             "(the official 'linear' method is broken upstream: q/k/v undefined)")
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.num_extra_tokens = num_extra_tokens
        self.scale = embed_dims**-0.5 if qk_scale is None else qk_scale
        q_method = 'identity' if method == 'avg' else method
        self.conv_proj_q = ConvProjection(embed_dims, q_method, kernel_size, stride_q, padding_q)
        if q_method == 'dw_bn' and (stride_q != 1 or 2 * padding_q != kernel_size - 1):
            raise ValueError(
                f'CvT: the query projection must keep the grid (the block adds it to its input); '
                f'got kernel {kernel_size}, stride_q {stride_q}, padding_q {padding_q}: use '
                f'stride_q=1, padding_q={(kernel_size - 1) // 2} with an odd kernel')
        self.conv_proj_k = ConvProjection(embed_dims, method, kernel_size, stride_kv, padding_kv)
        self.conv_proj_v = ConvProjection(embed_dims, method, kernel_size, stride_kv, padding_kv)
        self.proj_q = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
        self.proj_k = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
        self.proj_v = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def _heads(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, -1).transpose(1, 2)

    def forward(self, x: Tensor, hw: Tuple[int, int], return_attn: bool = False,
                bias: Optional[LogitBias] = None) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """``x``: ``(B, E + H·W, C)`` with the E extra tokens first. Returns ``(B, E + H·W, C)``
        (and the ``(B, heads, N_q, N_kv)`` attention map with ``return_attn``).

        ``bias``: an optional :class:`~mmmask.models.layers.LogitBias` applied to the scaled
        ``(B, heads, N_q, N_kv)`` logits (keys/values are the stride-``stride_kv`` grid, CLS
        first), e.g. a mask for analysis; it takes the explicit softmax path."""
        b, n, c = x.shape
        e = self.num_extra_tokens
        h, w = hw
        if n != e + h * w:
            raise ValueError(f'CvTAttention: {n} tokens for a {h}x{w} grid and {e} extra token(s)')
        extra, tokens = x[:, :e], x[:, e:]
        fmap = tokens.transpose(1, 2).reshape(b, c, h, w)
        q, k, v = (torch.cat([extra, proj(fmap)], dim=1) if e else proj(fmap)
                   for proj in (self.conv_proj_q, self.conv_proj_k, self.conv_proj_v))
        q = self._heads(self.proj_q(q))
        k = self._heads(self.proj_k(k))
        v = self._heads(self.proj_v(v))
        drop = self.attn_drop if self.training else 0.
        if return_attn or bias is not None:
            attn = biased_softmax((q @ k.transpose(-1, -2)) * self.scale, bias)
            out = F.dropout(attn, drop, self.training) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, scale=self.scale)
        out = self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, -1, c)))
        return (out, attn) if return_attn else out


class CvTBlock(nn.Module):
    """Pre-norm block: ``x + DropPath(Attn(LN(x)))``, then ``x + DropPath(MLP(LN(x)))``; the MLP
    is fc1 → QuickGELU → dropout → fc2 → dropout."""

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float = 4.,
                 drop_rate: float = 0., attn_drop_rate: float = 0., drop_path: float = 0.,
                 **attn_kwargs) -> None:
        super().__init__()
        self.ln1 = FP32LayerNorm(embed_dims, eps=1e-5)
        self.attn = CvTAttention(embed_dims, num_heads, attn_drop=attn_drop_rate,
                                 proj_drop=drop_rate, **attn_kwargs)
        self.ln2 = FP32LayerNorm(embed_dims, eps=1e-5)
        hidden = int(embed_dims * mlp_ratio)
        self.ffn = nn.Sequential()
        self.ffn.add_module('fc1', nn.Linear(embed_dims, hidden))
        self.ffn.add_module('act', QuickGELU())
        self.ffn.add_module('drop1', nn.Dropout(drop_rate))
        self.ffn.add_module('fc2', nn.Linear(hidden, embed_dims))
        self.ffn.add_module('drop2', nn.Dropout(drop_rate))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor, hw: Tuple[int, int]) -> Tensor:
        x = x + self.drop_path(self.attn(self.ln1(x), hw))
        return x + self.drop_path(self.ffn(self.ln2(x)))


class CvTStage(nn.Module):
    """One CvT stage: :class:`ConvEmbed`, optional CLS token, ``depth`` :class:`CvTBlock` s.

    ``forward`` maps ``(B, C_in, H, W)`` to ``(map (B, C, H', W'), cls (B, 1, C) or None)``.
    """

    def __init__(self, in_channels: int, embed_dims: int, depth: int, num_heads: int,
                 patch_size: int, patch_stride: int, patch_padding: int, mlp_ratio: float,
                 qkv_bias: bool, cls_token: bool, method: str, kernel_size: int,
                 stride_kv: int, stride_q: int, padding_kv: int, padding_q: int,
                 drop_rate: float = 0., attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0., with_cp: bool = False,
                 qk_scale: Optional[float] = None) -> None:
        super().__init__()
        self.with_cp = with_cp
        self.patch_embed = ConvEmbed(in_channels, embed_dims, patch_size, patch_stride,
                                     patch_padding)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims)) if cls_token else None
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList([
            CvTBlock(embed_dims, num_heads, mlp_ratio, drop_rate, attn_drop_rate, dpr[j],
                     qkv_bias=qkv_bias, method=method, kernel_size=kernel_size,
                     stride_kv=stride_kv, stride_q=stride_q, padding_kv=padding_kv,
                     padding_q=padding_q, num_extra_tokens=int(cls_token), qk_scale=qk_scale)
            for j in range(depth)
        ])

    def forward(self, x: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        x = self.patch_embed(x)
        b, c, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(b, -1, -1), x], dim=1)
        x = self.pos_drop(x)
        for block in self.blocks:
            if self.with_cp and x.requires_grad:
                x = cp.checkpoint(block, x, (h, w), use_reentrant=False)
            else:
                x = block(x, (h, w))
        cls = None
        if self.cls_token is not None:
            cls, x = x[:, :1], x[:, 1:]
        return x.transpose(1, 2).reshape(b, c, h, w), cls


_CVT13 = dict(
    embed_dims=[64, 192, 384], depths=[1, 2, 10], num_heads=[1, 3, 6],
    patch_sizes=[7, 3, 3], patch_strides=[4, 2, 2], patch_paddings=[2, 1, 1],
    mlp_ratios=[4., 4., 4.], qkv_bias=[True, True, True], cls_token=[False, False, True],
    qkv_proj_method=['dw_bn', 'dw_bn', 'dw_bn'], kernel_qkv=[3, 3, 3], padding_kv=[1, 1, 1],
    stride_kv=[2, 2, 2], padding_q=[1, 1, 1], stride_q=[1, 1, 1],
    drop_rates=[0., 0., 0.], attn_drop_rates=[0., 0., 0.], drop_path_rates=[0., 0., 0.1])


@MODELS.register_module()
class CvT(FrozenStagesMixin, BaseModule):
    """CvT backbone (CvT-13 / CvT-21 / CvT-W24 as published) for classification and dense tasks.

    Args:
        arch: ``'cvt-13'``, ``'cvt-21'``, ``'cvt-w24'`` (also ``'13'``, ``'21'``, ``'w24'``) or a
            dict. A dict needs ``embed_dims``, ``depths``, ``num_heads`` (one entry per stage);
            the other per-stage keys of the official ``MODEL.SPEC`` default to CvT-13's values
            (of its first / middle / last stage for the first / middle / last stages):
            ``patch_sizes``, ``patch_strides``, ``patch_paddings``, ``mlp_ratios``, ``qkv_bias``,
            ``cls_token``, ``qkv_proj_method`` (``'dw_bn'``/``'avg'``), ``kernel_qkv``,
            ``padding_kv``, ``stride_kv``, ``padding_q``, ``stride_q``, ``drop_rates``,
            ``attn_drop_rates``, ``drop_path_rates``.
        in_channels: input channels.
        out_indices: stages whose output is returned (negative indices count from the end);
            None: every stage for ``out_type='featmap'``, the last stage otherwise.
        out_type: ``'featmap'``: the ``(B, C_i, H_i, W_i)`` map of each stage (strides 4/8/16 for
            the published archs; for mmseg/mmdet necks and heads). ``'cls_token'``: the stage's
            CLS token ``(B, C_i)`` — after the final LayerNorm for the last stage (the official
            classification feature); every returned stage must have a CLS token.
            ``'avg_featmap'``: the mean over the stage's map tokens ``(B, C_i)``, for the last stage
            after the final LayerNorm (the official feature of an arch without a CLS token).
        drop_path_rate: None takes the arch's per-stage rates; a sequence gives one rate per stage;
            a float sets the last stage's rate (the other stages 0), which is how every published
            CvT config sets stochastic depth. Within a stage the rate ramps linearly from 0.
        qk_scale: None keeps the official ``embed_dims ** -0.5`` attention scale.
        init_mode: the official init: ``'trunc_norm'`` (published configs) or ``'xavier'``.
        frozen_stages: freeze the first ``frozen_stages`` stages (-1: none).
        norm_eval: keep the BatchNorms of the q/k/v projections in eval mode while training.
        with_cp: gradient checkpointing of the blocks.
        init_cfg: e.g. ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
    """
    arch_zoo: Dict[str, dict] = {
        'cvt-13': _CVT13,
        'cvt-21': dict(_CVT13, depths=[1, 4, 16]),
        'cvt-w24': dict(_CVT13, embed_dims=[192, 768, 1024], num_heads=[3, 12, 16],
                        depths=[2, 2, 20], drop_path_rates=[0., 0., 0.3]),
    }
    required_keys = ('embed_dims', 'depths', 'num_heads')
    out_types = ('featmap', 'cls_token', 'avg_featmap')

    def __init__(self, arch: Union[str, dict] = 'cvt-13', in_channels: int = 3,
                 out_indices: Optional[Union[int, Sequence[int]]] = None,
                 out_type: str = 'cls_token',
                 drop_path_rate: Optional[Union[float, Sequence[float]]] = None,
                 qk_scale: Optional[float] = None, init_mode: str = 'trunc_norm',
                 frozen_stages: int = -1, norm_eval: bool = False, with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch = arch = self.parse_arch(arch)
        self.embed_dims = list(arch['embed_dims'])
        self.num_stages = n = len(self.embed_dims)
        if out_type not in self.out_types:
            raise ValueError(f'CvT out_type must be one of {self.out_types}, got {out_type!r}')
        self.out_type = out_type
        if out_indices is None:
            out_indices = list(range(n)) if out_type == 'featmap' else [n - 1]
        self.out_indices = normalize_out_indices(out_indices, n)
        if out_type == 'cls_token':
            no_cls = [i for i in self.out_indices if not arch['cls_token'][i]]
            if no_cls:
                raise ValueError(
                    f"CvT out_type='cls_token' but stage(s) {no_cls} have no CLS token "
                    f"(arch cls_token={arch['cls_token']}); use out_type='avg_featmap' or "
                    "'featmap', or out_indices of stages with a CLS token")
        if init_mode not in ('trunc_norm', 'xavier'):
            raise ValueError(f"CvT init_mode must be 'trunc_norm' or 'xavier', got {init_mode!r}")
        self.init_mode = init_mode
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        if drop_path_rate is None:
            rates = list(arch['drop_path_rates'])
        elif isinstance(drop_path_rate, (int, float)):
            rates = [0.] * (n - 1) + [float(drop_path_rate)]
        else:
            rates = list(drop_path_rate)
            if len(rates) != n:
                raise ValueError(f'CvT drop_path_rate: {len(rates)} rates for {n} stages')
        self.stages = nn.ModuleList()
        channels = in_channels
        for i in range(n):
            self.stages.append(CvTStage(
                channels, arch['embed_dims'][i], arch['depths'][i], arch['num_heads'][i],
                arch['patch_sizes'][i], arch['patch_strides'][i], arch['patch_paddings'][i],
                arch['mlp_ratios'][i], arch['qkv_bias'][i], arch['cls_token'][i],
                arch['qkv_proj_method'][i], arch['kernel_qkv'][i], arch['stride_kv'][i],
                arch['stride_q'][i], arch['padding_kv'][i], arch['padding_q'][i],
                arch['drop_rates'][i], arch['attn_drop_rates'][i], rates[i], with_cp, qk_scale))
            channels = arch['embed_dims'][i]
        # the official final norm; only built when an output uses it (no unused parameters)
        self.final_norm = None
        if out_type != 'featmap' and n - 1 in self.out_indices:
            self.final_norm = FP32LayerNorm(self.embed_dims[-1], eps=1e-5)
        self._freeze_stages()

    @classmethod
    def parse_arch(cls, arch: Union[str, dict]) -> dict:
        """A preset name or a (partial) spec dict → the full per-stage spec dict."""
        if isinstance(arch, str):
            name = arch.lower()
            name = name if name.startswith('cvt-') else f'cvt-{name}'
            if name not in cls.arch_zoo:
                raise ValueError(f'Unknown CvT arch {arch!r}; valid: {sorted(cls.arch_zoo)} '
                                 f'or a dict with at least {cls.required_keys}')
            return {k: list(v) for k, v in cls.arch_zoo[name].items()}
        missing = [k for k in cls.required_keys if k not in arch]
        if missing:
            raise ValueError(f'CvT arch dict misses {missing} (needs {cls.required_keys}; the '
                             f'other keys default to CvT-13: {sorted(_CVT13)})')
        unknown = sorted(set(arch) - set(_CVT13))
        if unknown:
            raise ValueError(f'CvT arch dict has unknown keys {unknown}; valid: {sorted(_CVT13)}')
        n = len(arch['embed_dims'])
        # a missing key takes CvT-13's value of the first / a middle / the last stage
        ref = [0 if i == 0 else 2 if i == n - 1 else 1 for i in range(n)]
        full = {}
        for key, default in _CVT13.items():
            if key not in arch:
                full[key] = [default[j] for j in ref]
                continue
            value = arch[key]
            value = list(value) if isinstance(value, (list, tuple)) else [value] * n
            if len(value) != n:
                raise ValueError(f'CvT arch: {key} has {len(value)} entries, expected {n}')
            full[key] = value
        return full

    def init_weights(self) -> None:
        if self.init_cfg is not None:
            return super().init_weights()
        # the official init: Linear trunc-normal(0.02) (or xavier-uniform) with zero bias, unit
        # LayerNorm/BatchNorm, CLS trunc-normal(0.02); convolutions keep PyTorch's default.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                if self.init_mode == 'xavier':
                    nn.init.xavier_uniform_(m.weight)
                else:
                    trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for stage in self.stages:
            if stage.cls_token is not None:
                trunc_normal_(stage.cls_token, std=.02)

    def _freeze_stages(self) -> None:
        for i in range(min(self.frozen_stages, self.num_stages)):
            stage = self.stages[i]
            stage.eval()
            for p in stage.parameters():
                p.requires_grad = False
        if self.frozen_stages >= self.num_stages and self.final_norm is not None:
            self.final_norm.eval()
            for p in self.final_norm.parameters():
                p.requires_grad = False

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        outs = []
        last = self.num_stages - 1
        for i, stage in enumerate(self.stages):
            x, cls = stage(x)
            if i not in self.out_indices:
                continue
            if self.out_type == 'featmap':
                outs.append(x.contiguous())
            elif self.out_type == 'cls_token':
                outs.append((self.final_norm(cls) if i == last else cls)[:, 0])
            else:
                tokens = x.flatten(2).transpose(1, 2)
                if i == last:
                    tokens = self.final_norm(tokens)
                outs.append(tokens.mean(dim=1))
        return tuple(outs)


def cvt_attention_flops(embed_dims: int, hw: Tuple[int, int], num_extra_tokens: int = 0,
                        method: str = 'dw_bn', kernel_size: int = 3, stride_kv: int = 2,
                        padding_kv: int = 1, stride_q: int = 1, padding_q: int = 1) -> int:
    """Multiply-accumulates of one :class:`CvTAttention` on an ``hw`` grid (batch 1).

    Counts the depthwise q/k/v convolutions (``k²·C`` per output position; BatchNorm, pooling and
    softmax are not counted), the four Linear layers, ``QKᵀ`` and ``AV`` — with the true k/v token
    count, unlike the official ``compute_macs`` which assumes a square grid with ``H/stride``
    tokens per side. This is what generic counters (fvcore/mmengine) also count, so it matches
    them; it is a closed form for the benchmark's per-block report.
    """
    e = num_extra_tokens
    q_method = 'identity' if method == 'avg' else method
    q_hw = ConvProjection(1, q_method, kernel_size, stride_q, padding_q).out_size(hw)
    kv_hw = ConvProjection(1, method, kernel_size, stride_kv, padding_kv).out_size(hw)
    n_q, n_kv = e + q_hw[0] * q_hw[1], e + kv_hw[0] * kv_hw[1]
    c = embed_dims
    macs = 0
    if method == 'dw_bn':
        macs += kernel_size**2 * c * (q_hw[0] * q_hw[1] + 2 * kv_hw[0] * kv_hw[1])
    macs += c * c * (n_q + 2 * n_kv)  # proj_q, proj_k, proj_v
    macs += 2 * n_q * n_kv * c  # QKᵀ and AV over all heads
    macs += c * c * n_q  # proj
    return macs
