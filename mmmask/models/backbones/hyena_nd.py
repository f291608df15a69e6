"""Multi-Dimensional Hyena (Hyena N-D) for vision transformers (Zimerman & Wolf, AISTATS 2024).

arXiv:2309.13600. The authors' code was released as supplementary material only; the numerics here
follow an index copy of a ``HyenaOperator2d`` that matches the paper's description (repository not
identified). Our own implementation; see ``configs/hyena_nd/README.md`` for every assumption.

The order-2 operator on an ``H×W`` token grid (channels ``D``):

1. ``in_proj``: ``D → 3D``; depthwise 3×3 *short* convolution; split into ``x0, x1, v``;
2. ``v ← x1 ⊙ v``; ``v ← h ⊛ v + b ⊙ v`` — a 2-D *long* convolution over the whole grid by a
   zero-padded (``2H×2W``) FFT, i.e. a one-quadrant ("causal") convolution: ``out[i, j]`` sees
   ``v[i', j']`` for ``i' ≤ i, j' ≤ j`` only; ``b`` is a per-channel bias (skip) term;
3. ``y = x0 ⊙ v``; ``out_proj``.

The filter ``h ∈ R^{D×H×W}`` is *implicit*: in the ``'product'`` variant ``h[c, i, j] = hx[c, i] ·
hy[c, j]``, each 1-D filter the output of a small FFN with sine activations over positional features
``[t, cos(ωf), −sin(ωf)]`` times an exponential decay window ``exp(−t·|δ_c|)``; ``'joint'`` is one
FFN over the concatenated 2-D positional features (window: product of the two 1-D windows).
Non-causal mixing (``'4dir'``): the operator runs on four flipped copies of ``(x0, x1, v)`` (none,
both axes, W, H), the outputs are flipped back and mixed by ``Linear(4, 1)`` (``'4dirp'``:
``Linear(4D, D)``). ``'standard'`` keeps the single one-quadrant direction.

Numerics reproduced from the reference operator (quirks included): the FFT convolution result is
divided by ``fft_size = 2L`` (the reference divides the filter spectrum by ``fft_size`` and then
uses a normalised inverse FFT, so its output is ``(h ⊛ v) / 2L``; for ``H ≠ W`` we use
``2·sqrt(H·W)``); one sine-frequency parameter (init 1) is shared by every activation of both
filter FFNs; the filter bias is ``randn`` initialised; the decay rates ``δ`` are fixed buffers.
"""
import math
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn.bricks import DropPath
from mmpretrain.models.backbones import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed
from torch import Tensor, nn

from ...registry import MODELS
from ..layers.biased_attention import BiasedSelfAttention

__all__ = ['HyenaND', 'HyenaViT', 'ImplicitFilter2d', 'fft_long_conv2d', 'hyena_nd_flops',
           'hyena_vit_uncounted_flops', 'attention_flops']

DIRECTIONS = ('standard', '4dir', '4dirp')


def fft_long_conv2d(u: Tensor, k: Tensor, bias: Optional[Tensor] = None,
                    scale: float = 1.0) -> Tensor:
    """One-quadrant 2-D long convolution through a zero-padded FFT.

    ``out[b, c, i, j] = scale · Σ_{a ≤ i, e ≤ j} k[c, a, e] · u[b, c, i − a, j − e] + bias[c] ·
    u[b, c, i, j]``. ``u``: ``(B, C, H, W)``; ``k``: ``(C, H, W)``; padding to ``2H×2W`` turns the
    circular FFT convolution into a linear one. Computed in float32 (as the reference does).
    Cost ``O(B·C·HW·log HW)`` instead of ``O(B·C·(HW)²)`` for the direct sum.
    """
    dtype = u.dtype
    hh, ww = u.shape[-2:]
    size = (2 * hh, 2 * ww)
    k_f = torch.fft.rfft2(k.float(), s=size)
    u_f = torch.fft.rfft2(u.float(), s=size)
    y = torch.fft.irfft2(u_f * k_f, s=size)[..., :hh, :ww]
    if scale != 1.0:
        y = y * scale
    if bias is not None:
        y = y + u.float() * bias.float()[:, None, None]
    return y.to(dtype)


def positional_features(length: int, emb_dim: int, device=None) -> Tuple[Tensor, Tensor]:
    """Hyena's filter inputs for a filter of ``length`` taps: ``(z, t)`` with ``t = linspace(0, 1,
    L)`` of shape ``(L, 1)`` and ``z = [t, Re e^{−i f ω}, Im e^{−i f ω}]`` of shape
    ``(L, emb_dim)``, ``ω = 2π·(0..L−1)/L`` and ``(emb_dim − 1)/2`` bands
    ``f = linspace(1e-4, bands − 1, bands)``."""
    bands = (emb_dim - 1) // 2
    t = torch.linspace(0, 1, length, device=device)[:, None]
    w = 2 * math.pi * torch.arange(length, device=device, dtype=torch.float32)[:, None] / length
    f = torch.linspace(1e-4, bands - 1, bands, device=device)[None, :]
    phase = f * w
    return torch.cat([t, torch.cos(phase), -torch.sin(phase)], dim=-1), t


class ImplicitFilter2d(nn.Module):
    """Implicit 2-D long filter ``h ∈ R^{C×H×W}`` (Hyena N-D, §3 of the paper) plus the bias term.

    Args:
        channels: filter channels C.
        filter_type: ``'product'`` (``h = hx ⊗ hy``, two 1-D FFNs) or ``'joint'`` (one FFN over the
            concatenated row/column positional features).
        hidden_dims: FFN width (the reference's ``filter_order``, 64).
        emb_dim: positional features per axis (odd, ≥ 3).
        num_inner: hidden ``Linear(hidden, hidden)`` layers (2).
        sin_freq: initial frequency of the shared sine activation (1 in the reference operator).
        fast_decay_pct, slow_decay_pct, target: decay window rates, linearly spaced per channel
            between ``ln(target)/slow`` and ``ln(target)/fast``.
        shift: constant added to the window.
        modulate: apply the decay window.
    """

    def __init__(self, channels: int, filter_type: str = 'product', hidden_dims: int = 64,
                 emb_dim: int = 3, num_inner: int = 2, sin_freq: float = 1.0,
                 fast_decay_pct: float = 0.3, slow_decay_pct: float = 1.5, target: float = 1e-2,
                 shift: float = 0.0, modulate: bool = True) -> None:
        super().__init__()
        if filter_type not in ('product', 'joint'):
            raise ValueError(f"filter_type must be 'product' or 'joint', got {filter_type!r}")
        if emb_dim < 3 or emb_dim % 2 == 0:
            raise ValueError(f'emb_dim must be odd and >= 3 (t, cos, sin), got {emb_dim}')
        self.channels, self.filter_type, self.emb_dim = channels, filter_type, emb_dim
        self.shift, self.modulate = shift, modulate
        #: one frequency shared by every sine activation (the reference reuses one module)
        self.freq = nn.Parameter(torch.full((1, hidden_dims), float(sin_freq)))

        def mlp(in_dims: int) -> nn.ModuleList:
            return nn.ModuleList([nn.Linear(in_dims, hidden_dims)] +
                                 [nn.Linear(hidden_dims, hidden_dims) for _ in range(num_inner)] +
                                 [nn.Linear(hidden_dims, channels, bias=False)])

        if filter_type == 'product':
            self.x_mlp, self.y_mlp = mlp(emb_dim), mlp(emb_dim)
        else:
            self.mlp = mlp(2 * emb_dim)
        deltas = torch.linspace(math.log(target) / slow_decay_pct,
                                math.log(target) / fast_decay_pct, channels)
        self.register_buffer('x_deltas', deltas.clone())
        self.register_buffer('y_deltas', deltas.clone())
        self.bias = nn.Parameter(torch.randn(channels))

    def init_weights(self) -> None:
        """PyTorch default init for the FFNs (protects them from a backbone-wide Linear init)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                m.reset_parameters()

    def _run(self, layers: nn.ModuleList, z: Tensor) -> Tensor:
        for layer in layers[:-1]:
            z = torch.sin(self.freq * layer(z))
        return layers[-1](z)

    def _window(self, t: Tensor, deltas: Tensor) -> Tensor:
        return torch.exp(-t * deltas.abs())  # (L, C)

    def forward(self, hw: Tuple[int, int]) -> Tensor:
        """The filter for an ``H×W`` grid, ``(C, H, W)``."""
        hh, ww = hw
        device = self.freq.device
        zx, tx = positional_features(hh, self.emb_dim, device)
        zy, ty = positional_features(ww, self.emb_dim, device)
        if self.filter_type == 'product':
            hx, hy = self._run(self.x_mlp, zx), self._run(self.y_mlp, zy)  # (H, C), (W, C)
            if self.modulate:
                hx = hx * (self._window(tx, self.x_deltas) + self.shift)
                hy = hy * (self._window(ty, self.y_deltas) + self.shift)
            h = hx[:, None, :] * hy[None, :, :]
        else:
            z = torch.cat([zx[:, None].expand(hh, ww, -1), zy[None].expand(hh, ww, -1)], -1)
            h = self._run(self.mlp, z)  # (H, W, C)
            if self.modulate:
                window = (self._window(tx, self.x_deltas)[:, None] *
                          self._window(ty, self.y_deltas)[None])
                h = h * (window + self.shift)
        return h.permute(2, 0, 1)


def _flips(x: Tensor) -> Tensor:
    """The four orientations on the batch axis: identity, both axes, W, H (``(B, C, H, W)``)."""
    return torch.cat([x, x.flip(-1, -2), x.flip(-1), x.flip(-2)], dim=0)


class HyenaND(nn.Module):
    """Hyena N-D token mixer on a 2-D grid (a drop-in replacement of self-attention).

    Args:
        embed_dims: channels D.
        order: Hyena recurrence depth N (``in_proj`` to ``(N+1)·D``, ``N−1`` long filters).
        direction: ``'standard'`` (one quadrant, causal in both axes up to the short conv's
            one-token halo), ``'4dir'`` (four flipped copies mixed by ``Linear(4, 1)``, default) or
            ``'4dirp'`` (mixed by ``Linear(4D, D)``).
        filter_type: ``'product'`` (default) or ``'joint'`` implicit filter.
        filter_hidden: width of the filter FFN (``filter_order`` in the reference, 64).
        dropout: dropout after each gating product.
        fft_scale: ``'reference'`` divides the long convolution by ``2·sqrt(H·W)`` (= ``2L``, the
            reference operator's normalisation), ``'none'`` leaves it unscaled.
        filter_cfg: extra :class:`ImplicitFilter2d` kwargs (``emb_dim``, ``num_inner``, decay...).

    ``forward(x, hw)``: ``x`` is ``(B, H·W, D)`` (row-major grid, no extra tokens) or ``(B, H, W,
    D)``; returns the same layout.
    """

    def __init__(self, embed_dims: int, order: int = 2, direction: str = '4dir',
                 filter_type: str = 'product', filter_hidden: int = 64, dropout: float = 0.,
                 fft_scale: str = 'reference', filter_cfg: Optional[dict] = None) -> None:
        super().__init__()
        if direction not in DIRECTIONS:
            raise ValueError(f'HyenaND direction must be one of {DIRECTIONS}, got {direction!r}')
        if order < 2:
            raise ValueError(f'HyenaND order must be >= 2, got {order}')
        if fft_scale not in ('reference', 'none'):
            raise ValueError(f"fft_scale must be 'reference' or 'none', got {fft_scale!r}")
        self.embed_dims, self.order, self.direction = embed_dims, order, direction
        self.fft_scale = fft_scale
        inner = embed_dims * (order + 1)
        self.in_proj = nn.Linear(embed_dims, inner)
        self.short_filter = nn.Conv2d(inner, inner, 3, padding=1, groups=inner)
        self.filter = ImplicitFilter2d(embed_dims * (order - 1), filter_type, filter_hidden,
                                       **(filter_cfg or {}))
        self.dropout = nn.Dropout(dropout)
        if direction == '4dir':
            self.linear_mix = nn.Linear(4, 1)
        elif direction == '4dirp':
            self.linear_mix = nn.Linear(4 * embed_dims, embed_dims)
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        #: residual-branch DropPath (set by the backbone, as mmpretrain's attention carries it)
        self.out_drop = nn.Identity()

    def init_weights(self) -> None:
        self.filter.init_weights()

    def long_conv_scale(self, hw: Tuple[int, int]) -> float:
        return 1.0 / (2 * math.sqrt(hw[0] * hw[1])) if self.fft_scale == 'reference' else 1.0

    def forward(self, x: Tensor, hw: Optional[Tuple[int, int]] = None) -> Tensor:
        tokens = x.dim() == 3
        if tokens:
            b, n, c = x.shape
            if hw is None:
                side = math.isqrt(n)
                if side * side != n:
                    raise ValueError(f'HyenaND got {n} tokens, not a square grid: pass hw=(H, W)')
                hw = (side, side)
            if hw[0] * hw[1] != n:
                raise ValueError(f'HyenaND: hw={tuple(hw)} does not match {n} tokens (extra '
                                 'tokens such as CLS cannot enter the 2-D grid)')
            x = x.reshape(b, hw[0], hw[1], c)
        b, hh, ww, c = x.shape
        u = self.in_proj(x).permute(0, 3, 1, 2)  # (B, (N+1)D, H, W)
        u = self.short_filter(u)
        *gates, v = u.split(self.embed_dims, dim=1)
        four = self.direction != 'standard'
        if four:
            v, gates = _flips(v), [_flips(g) for g in gates]
        k = self.filter((hh, ww)).view(self.order - 1, self.embed_dims, hh, ww)
        bias = self.filter.bias.view(self.order - 1, self.embed_dims)
        scale = self.long_conv_scale((hh, ww))
        for o, gate in enumerate(reversed(gates[1:])):
            v = self.dropout(v * gate)
            v = fft_long_conv2d(v, k[o], bias[o], scale)
        y = (v * gates[0]).permute(0, 2, 3, 1)  # (B or 4B, H, W, D)
        if four:
            y1, y2, y3, y4 = y.chunk(4, dim=0)
            y = torch.stack([y1, y2.flip(1, 2), y3.flip(2), y4.flip(1)], dim=-1)
            if self.direction == '4dir':
                y = self.linear_mix(y).squeeze(-1)
            else:
                y = self.linear_mix(y.flatten(-2))
        y = self.out_drop(self.out_proj(y))
        return y.reshape(b, hh * ww, c) if tokens else y


def hyena_nd_flops(embed_dims: int, hw: Tuple[int, int], order: int = 2,
                   direction: str = '4dir', filter_hidden: int = 64,
                   filter_type: str = 'product') -> Dict[str, float]:
    """Multiply-accumulate count of one :class:`HyenaND` (one image), by part.

    FFTs are counted as ``2.5·n·log2(n)`` real MACs per length-n complex transform over the padded
    ``2H×2W`` grid (a standard radix-2 estimate; rfft2 ≈ half a complex FFT): the number a
    FLOP counter that ignores FFTs (fvcore, mmengine) cannot see. Returns ``dict(proj, short_conv,
    long_conv, gating, filter, mix, total)``.
    """
    hh, ww = hw
    n, d = hh * ww, embed_dims
    copies = 1 if direction == 'standard' else 4
    proj = n * d * (order + 1) * d + n * d * d
    short_conv = n * (order + 1) * d * 9
    padded = 4 * n
    fft = 0.5 * 2.5 * padded * math.log2(padded)  # one real 2-D transform of one channel
    # per filter: rfft2(v), irfft2(product) per copy and channel; rfft2(k) once per channel;
    # spectrum product (complex, ~half the padded grid) and the bias term
    long_conv = (order - 1) * d * (copies * (2 * fft + 4 * padded / 2 + n) + fft)
    gating = copies * order * n * d
    taps = hh + ww if filter_type == 'product' else n
    hidden = filter_hidden
    emb_in = 3 if filter_type == 'product' else 6
    filter_mlp = taps * (emb_in * hidden + 2 * hidden * hidden + hidden * d * (order - 1))
    filter_outer = n * d * (order - 1) if filter_type == 'product' else 0
    mix = n * d * 4 if direction == '4dir' else (n * 4 * d * d if direction == '4dirp' else 0)
    total = proj + short_conv + long_conv + gating + filter_mlp + filter_outer + mix
    return dict(proj=proj, short_conv=short_conv, long_conv=long_conv, gating=gating,
                filter_mlp=filter_mlp, filter_outer=filter_outer, mix=mix, total=total)


def hyena_vit_uncounted_flops(model: 'HyenaViT', input_hw: Tuple[int, int]) -> Dict[str, float]:
    """MACs of a :class:`HyenaViT` forward (one image) that ``torch.utils.flop_counter`` does not
    see: the FFT long convolutions and the elementwise gating / filter outer products of every
    Hyena layer (the counter only counts matmuls and convolutions). Add ``fft_and_gating`` to the
    counter's MACs for the model's total. ``input_hw``: the image size."""
    patch = model.patch_embed.projection.stride
    hw = (input_hw[0] // patch[0], input_hw[1] // patch[1])
    fft = gating = 0.0
    for layer in model.layers[:model.num_hyena_layers]:
        mixer = layer.attn
        f = hyena_nd_flops(model.embed_dims, hw, mixer.order, mixer.direction,
                           mixer.filter.freq.shape[1], mixer.filter.filter_type)
        fft += f['long_conv']
        gating += f['gating'] + f['filter_outer']
    return dict(fft=fft, gating=gating, fft_and_gating=fft + gating, grid=hw[0] * hw[1])


def attention_flops(embed_dims: int, num_tokens: int) -> float:
    """MACs of one multi-head self-attention over ``num_tokens`` tokens (qkv, QKᵀ, AV, proj)."""
    return 4 * num_tokens * embed_dims**2 + 2 * num_tokens**2 * embed_dims


@MODELS.register_module()
class HyenaViT(VisionTransformer):
    """A plain ViT whose self-attention is replaced by :class:`HyenaND` (Hyena-ViT / Hyena-DeiT).

    No CLS token (the grid must hold only patch tokens); classification uses global average
    pooling (``out_type='avg_featmap'``, mmpretrain's GAP + LayerNorm), dense tasks
    ``out_type='featmap'`` (``(B, C, H, W)`` per ``out_indices``). Any input size whose sides are
    multiples of the patch size works (the filters are generated for the actual grid; the position
    embedding is interpolated).

    Args:
        arch: an mmpretrain ViT arch name (e.g. ``'deit-tiny'``), one of :attr:`arch_zoo`'s extra
            presets (``'vit-small-data'``: the 9-layer, 192-wide ViT for 32–64 px images of the
            small-dataset literature, MLP ratio 2, 12 heads), or a dict.
        num_hyena_layers: Hyena in the first ``k`` layers, then standard self-attention
            (:class:`BiasedSelfAttention`, mmpretrain ViT keys) — the paper's hybrid; ``None``: all.
        hyena_cfg: :class:`HyenaND` kwargs (``order``, ``direction``, ``filter_type``, ...).
        Other args: as mmpretrain's ``VisionTransformer`` (``with_cls_token`` is always False).
    """
    arch_zoo = {
        **VisionTransformer.arch_zoo,
        **dict.fromkeys(['vit-small-data', 'vit-sd'], dict(
            embed_dims=192, num_layers=9, num_heads=12, feedforward_channels=384)),
    }

    def __init__(self, arch: Union[str, dict] = 'vit-small-data', img_size: int = 32,
                 patch_size: int = 4, out_indices: Union[int, Sequence[int]] = -1,
                 out_type: str = 'avg_featmap', num_hyena_layers: Optional[int] = None,
                 hyena_cfg: Optional[dict] = None, layer_scale_init_value: float = 0.,
                 **kwargs) -> None:
        if isinstance(arch, str) and arch.lower() not in self.arch_zoo:
            raise ValueError(f'HyenaViT arch {arch!r} unknown: use one of '
                             f'{sorted(self.arch_zoo)} or a dict with embed_dims, num_layers, '
                             'num_heads, feedforward_channels')
        if out_type == 'cls_token':
            raise ValueError("HyenaViT has no CLS token: use out_type='avg_featmap' (GAP) or "
                             "'featmap'")
        if kwargs.pop('with_cls_token', False):
            raise ValueError('HyenaViT cannot use a CLS token (the Hyena grid holds only patch '
                             'tokens)')
        if layer_scale_init_value:
            raise NotImplementedError('HyenaViT does not support layer scale')
        out_indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        super().__init__(arch=arch, img_size=img_size, patch_size=patch_size,
                         out_indices=out_indices, out_type=out_type, with_cls_token=False,
                         **kwargs)
        depth = self.num_layers
        k = depth if num_hyena_layers is None else int(num_hyena_layers)
        if not 0 <= k <= depth:
            raise ValueError(f'num_hyena_layers must be in [0, {depth}], got {num_hyena_layers}')
        self.num_hyena_layers = k
        # the first k attentions -> Hyena; the rest -> BiasedSelfAttention (same keys, takes hw)
        for i, layer in enumerate(self.layers):
            old = layer.attn
            if i < k:
                new = HyenaND(self.embed_dims, **(hyena_cfg or {}))
            else:
                new = BiasedSelfAttention(old.embed_dims, old.num_heads,
                                          qkv_bias=old.qkv.bias is not None,
                                          attn_drop=old.attn_drop, proj_drop=old.proj_drop.p)
                new.load_state_dict(old.state_dict(), strict=True)
            new.out_drop = old.out_drop
            layer.attn = new

    def train(self, mode: bool = True) -> 'HyenaViT':
        super().train(mode)  # mmpretrain's BaseBackbone.train returns None
        return self

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x, hw = self.patch_embed(x)
        x = x + resize_pos_embed(self.pos_embed, self.patch_resolution, hw,
                                 mode=self.interpolate_mode, num_extra_tokens=0)
        x = self.pre_norm(self.drop_after_pos(x))
        outs = []
        for i, layer in enumerate(self.layers):
            x = x + layer.attn(layer.ln1(x), hw)
            x = layer.ffn(layer.ln2(x), identity=x)
            if i == len(self.layers) - 1 and self.final_norm:
                x = self.ln1(x)
            if i in self.out_indices:
                outs.append(self._format_output(x, hw))
        return tuple(outs)
