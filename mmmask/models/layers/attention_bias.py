"""Attention with a pluggable logit bias: ``softmax(QKᵀ ⊕ B) V``.

A *bias provider* (an ``nn.Module``) looks at the block input on its token grid and returns a
:class:`LogitBias`. The bias knows how to apply itself to a batch of attention logits — as a dense
tensor, or, for structured biases, through broadcasting views that never materialise an N×N copy —
and, when it factorises over the grid axes, how to hand out its per-axis factors to axial operators.
``⊕`` is the bias's own operation: an addition for the decay masks here, and for other methods a
multiplication (Gaussian mixture masks), a ``-inf`` fill (sparse connectivity) or a scaling
(temperatures) — each one more :class:`LogitBias` and provider, used through :func:`biased_softmax`.

Methods plugged in so far: PPMA's polyline path decay (:class:`PolylinePathBias`). Generic biases
for other methods: :class:`MultiplicativeBias` (GMM / element-wise masks), :class:`MaskedBias`
(sparse connectivity), :class:`ScaledBias` (temperature). The self-attention that consumes them is
:class:`mmmask.models.layers.BiasedSelfAttention`.
"""
from abc import ABCMeta, abstractmethod
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LogitBias(metaclass=ABCMeta):
    """Something applied to attention logits of shape ``(B, heads, N, N)`` before the softmax."""

    @abstractmethod
    def apply(self, logits: Tensor, transpose: bool = False) -> Tensor:
        """Return ``logits ⊕ B`` (or ``⊕ Bᵀ``) as a **new** tensor; ``logits`` is left untouched
        (:func:`biased_softmax` normalises the result in place at inference)."""

    @abstractmethod
    def dense(self, transpose: bool = False) -> Tensor:
        """``B`` (or ``Bᵀ``) as a dense ``(B, heads, N, N)`` tensor, for inspection."""

    def finalize(self, probs: Tensor) -> Tensor:
        """Post-softmax fix-up (identity; :class:`MaskedBias` zeroes fully masked rows)."""
        return probs


class DenseBias(LogitBias):
    """An additive bias given as a tensor broadcastable to ``(B, heads, N, N)``."""

    def __init__(self, bias: Tensor) -> None:
        self.bias = bias

    def apply(self, logits: Tensor, transpose: bool = False) -> Tensor:
        return logits + (self.bias.transpose(-1, -2) if transpose else self.bias)

    def dense(self, transpose: bool = False) -> Tensor:
        return self.bias.transpose(-1, -2) if transpose else self.bias


class MultiplicativeBias(LogitBias):
    """``logits ⊙ G`` (Hadamard product before the softmax), ``G`` broadcastable to the logits.

    Gaussian mixture masks and the element-wise learnable mask baseline (GMM attention) use it.
    """

    def __init__(self, gain: Tensor) -> None:
        self.gain = gain

    def apply(self, logits: Tensor, transpose: bool = False) -> Tensor:
        return logits * (self.gain.transpose(-1, -2) if transpose else self.gain).to(logits.dtype)

    def dense(self, transpose: bool = False) -> Tensor:
        return self.gain.transpose(-1, -2) if transpose else self.gain


class MaskedBias(LogitBias):
    """Keep the logits where ``keep`` is True, ``-inf`` elsewhere; rows with nothing kept give zeros.

    ``keep`` is a bool tensor broadcastable to the logits (sparse connectivity masks, Sparsifiner).
    """

    def __init__(self, keep: Tensor) -> None:
        if keep.dtype != torch.bool:
            raise TypeError(f'MaskedBias needs a bool keep-mask, got {keep.dtype}')
        self.keep = keep

    def apply(self, logits: Tensor, transpose: bool = False) -> Tensor:
        keep = self.keep.transpose(-1, -2) if transpose else self.keep
        return logits.masked_fill(~keep, float('-inf'))

    def dense(self, transpose: bool = False) -> Tensor:
        keep = self.keep.transpose(-1, -2) if transpose else self.keep
        return torch.zeros(keep.shape).masked_fill(~keep.cpu(), float('-inf'))

    def finalize(self, probs: Tensor) -> Tensor:
        return torch.nan_to_num(probs, nan=0.0)


class ScaledBias(LogitBias):
    """``logits · s`` with ``s`` a scalar or a tensor broadcastable to the logits (temperature
    scaling ``softmax(QKᵀ / T)`` is ``s = 1/T``)."""

    def __init__(self, scale) -> None:
        self.scale = scale

    def apply(self, logits: Tensor, transpose: bool = False) -> Tensor:
        return logits * self.scale

    def dense(self, transpose: bool = False) -> Tensor:
        return torch.as_tensor(self.scale)


def segment_sum(a: Tensor) -> Tensor:
    """``S[..., i, j] = a[min(i,j)+1] + ... + a[max(i,j)]`` along the last axis (zero diagonal).

    Built from one cumulative sum, in float32 whatever the input precision (the differences of a
    long cumulative sum lose everything in bf16/fp16). Cost O(L²) per sequence of length L.
    """
    c = torch.cumsum(a.float(), dim=-1)
    diff = c[..., :, None] - c[..., None, :]  # c[i] - c[j]
    n = a.shape[-1]
    lower = torch.ones(n, n, dtype=torch.bool, device=a.device).tril()
    return torch.where(lower, diff, -diff)  # c[max] - c[min]


class PolylinePathBias(LogitBias):
    """PPMA's 2-D polyline path decay (Zhao et al., NeurIPS 2025), kept in factorised form.

    ``row``: ``(B, H, heads, W, W)``, the 1-D path decay along each image row (from α);
    ``col``: ``(B, W, heads, H, H)``, the 1-D path decay along each image column (from β).
    For query ``(r1, i)`` and key ``(r2, j)`` the mask is ``M = row[r1][i, j] + col[j][r1, r2]``
    (horizontally along the query's row, then vertically along the key's column); ``Mᵀ`` is the
    other L-shaped path. Both factors are symmetric in their last two axes.

    Memory: the factors take O(N·(H+W)); applying ``M`` to logits goes through broadcasting views,
    so the only N×N tensor allocated is the result.
    """

    def __init__(self, row: Tensor, col: Tensor) -> None:
        self.row, self.col = row, col

    @property
    def grid(self) -> Tuple[int, int]:
        return self.row.shape[1], self.col.shape[1]

    def axial(self) -> Tuple[Tensor, Tensor]:
        """The per-axis factors ``(row, col)`` for axial (chunk-wise) attention."""
        return self.row, self.col

    def _views(self, transpose: bool) -> Tuple[Tensor, Tensor]:
        """Two views broadcastable to ``(B, heads, H, W, H, W)`` indexed ``[r1, i, r2, j]``."""
        row = self.row.transpose(1, 2)  # (B, h, r, a, b)
        col = self.col  # (B, c, h, s, t)
        if not transpose:
            # row[r1][i, j] and col[j][r1, r2]
            return row.unsqueeze(4), col.permute(0, 2, 3, 4, 1).unsqueeze(3)
        # Mᵀ[(r1,i),(r2,j)] = M[(r2,j),(r1,i)] = row[r2][j, i] + col[i][r2, r1]
        #                   = row[r2][i, j] + col[i][r1, r2]   (both factors are symmetric)
        return row.permute(0, 1, 3, 2, 4).unsqueeze(2), col.permute(0, 2, 3, 1, 4).unsqueeze(-1)

    def apply(self, logits: Tensor, transpose: bool = False) -> Tensor:
        """``logits + M`` (or ``+ Mᵀ``), broadcasting the factors."""
        b, h, n, _ = logits.shape
        (hh, ww) = self.grid
        first, second = self._views(transpose)
        out = logits.view(b, h, hh, ww, hh, ww) + first.to(logits.dtype)
        out.add_(second.to(logits.dtype))  # in place on the fresh result: one N×N allocation
        return out.view(b, h, n, n)

    def dense(self, transpose: bool = False) -> Tensor:
        b, _, h, _, _ = self.row.shape
        hh, ww = self.grid
        n = hh * ww
        zeros = self.row.new_zeros(1, 1, 1, 1).expand(b, h, n, n)
        return self.apply(zeros.contiguous(), transpose)


class PolylinePathDecay(nn.Module):
    """Bias provider of PPMA: input-dependent per-head decays along rows (α) and columns (β).

    The block input ``x`` (B, H, W, C) is split into heads; one ``Linear(head_dim -> 2)`` shared by
    all heads gives raw (α̃, β̃) per token and head, and
    ``α = softplus(α̃ + dt_bias[h]) · A[h]``, ``β = softplus(β̃ + dt_bias[h]) · A[h]`` with
    ``A = -exp(A_log)`` (Mamba-2-style parameterisation; one ``dt_bias`` for both axes).

    Args:
        embed_dims: channels C.
        num_heads: heads; C must divide evenly.
        a_init_range: ``A`` is drawn uniformly from this range.
        dt_min, dt_max, dt_init_floor: ``dt`` ~ log-uniform(dt_min, dt_max) (clamped below by the
            floor) and ``dt_bias = softplus⁻¹(dt)``.
    """

    def __init__(self, embed_dims: int, num_heads: int,
                 a_init_range: Tuple[float, float] = (1.0, 1.1), dt_min: float = 1e-3,
                 dt_max: float = 0.1, dt_init_floor: float = 1e-4) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by num_heads={num_heads}')
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.dt_proj = nn.Linear(self.head_dims, 2, bias=False)
        dt = torch.exp(torch.rand(num_heads) * (torch.log(torch.tensor(dt_max)) -
                                                torch.log(torch.tensor(dt_min))) +
                       torch.log(torch.tensor(dt_min))).clamp(min=dt_init_floor)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.empty(num_heads).uniform_(*a_init_range).log())
        self.dt_bias._no_weight_decay = True
        self.A_log._no_weight_decay = True

    def decays(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Row and column log-decays α, β, each ``(B, H, W, heads)`` and ≤ 0."""
        b, hh, ww, _ = x.shape
        raw = self.dt_proj(x.reshape(b, hh, ww, self.num_heads, self.head_dims))
        a = -torch.exp(self.A_log)
        alpha = F.softplus(raw[..., 0] + self.dt_bias) * a
        beta = F.softplus(raw[..., 1] + self.dt_bias) * a
        return alpha, beta

    def forward(self, x: Tensor) -> PolylinePathBias:
        alpha, beta = self.decays(x)
        row = segment_sum(alpha.permute(0, 1, 3, 2))  # (B, H, heads, W, W)
        col = segment_sum(beta.permute(0, 2, 3, 1))  # (B, W, heads, H, H)
        return PolylinePathBias(row, col)


def biased_softmax(logits: Tensor, bias: Optional[LogitBias], transpose: bool = False) -> Tensor:
    """``softmax(logits ⊕ B)`` over the last axis (``B`` may be None); ``logits`` is not modified.

    Without autograd the biased logits are a fresh tensor, so they are normalised in place: one
    N×N allocation per call instead of two (what keeps PPMA's `whole` mode at under half the memory
    of the materialised-mask implementation).
    """
    if bias is None:
        return logits.softmax(dim=-1)
    biased = bias.apply(logits, transpose)
    if biased.requires_grad:
        return bias.finalize(biased.softmax(dim=-1))
    biased.sub_(biased.amax(dim=-1, keepdim=True)).exp_()
    return bias.finalize(biased.div_(biased.sum(dim=-1, keepdim=True)))
