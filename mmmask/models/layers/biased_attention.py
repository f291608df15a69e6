"""Multi-head self-attention ``softmax(s·QKᵀ ⊕ B) V`` whose ``B`` comes from a pluggable provider.

The one attention module behind every attention-mask method in mmmask (see ``attention_bias.py``):
a *bias provider* is an ``nn.Module`` called as ``provider(x=x, q=q, k=k, hw=hw)`` that returns a
:class:`LogitBias` (or ``None`` for plain attention). Providers use what they need: a Gaussian
mixture mask only the grid ``hw``, a connectivity predictor ``q`` and ``k``, PPMA the input ``x``.

Parameter names follow mmpretrain's ``MultiheadAttention`` and timm's ``Attention`` (``qkv``,
``proj``), so :func:`swap_attention` can put it into a built mmpretrain ViT without touching
checkpoints, and official timm-style weights load with a trivial key map.
"""
import math
from typing import Optional, Tuple, Union

import torch
from torch import Tensor, nn

from .attention_bias import LogitBias, biased_softmax


class BiasedSelfAttention(nn.Module):
    """Self-attention with an optional logit-bias provider.

    Args:
        embed_dims: channels C.
        num_heads: heads; ``head_dims = C // num_heads`` unless given.
        qkv_bias: bias in the fused ``qkv`` projection.
        qk_scale: logit scale; default ``head_dims ** -0.5``.
        attn_drop, proj_drop: dropout on the attention map / output.
        bias_provider: a module or a ``MODELS`` config; ``None`` gives plain attention.
        num_extra_tokens: leading tokens (CLS, distillation) that are not on the grid; passed to
            the provider as part of ``x`` and excluded from the inferred ``hw``.
        head_dims: per-head width when ``heads * head_dims != C`` (e.g. GMM-ViT's dim_head 16).
    """

    def __init__(self, embed_dims: int, num_heads: int, qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, attn_drop: float = 0.,
                 proj_drop: float = 0., bias_provider: Union[None, dict, nn.Module] = None,
                 num_extra_tokens: int = 0, head_dims: Optional[int] = None) -> None:
        super().__init__()
        if head_dims is None:
            if embed_dims % num_heads:
                raise ValueError(f'embed_dims={embed_dims} is not divisible by '
                                 f'num_heads={num_heads}; pass head_dims explicitly')
            head_dims = embed_dims // num_heads
        self.embed_dims, self.num_heads, self.head_dims = embed_dims, num_heads, head_dims
        inner = num_heads * head_dims
        self.scale = head_dims**-0.5 if qk_scale is None else qk_scale
        self.num_extra_tokens = num_extra_tokens
        self.qkv = nn.Linear(embed_dims, 3 * inner, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(inner, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)
        if isinstance(bias_provider, dict):
            from mmmask.registry import MODELS
            bias_provider = MODELS.build(bias_provider)
        self.bias_provider = bias_provider
        #: residual-branch DropPath applied inside (mmpretrain's attention does this itself)
        self.out_drop = nn.Identity()

    def grid(self, num_tokens: int, hw: Optional[Tuple[int, int]]) -> Tuple[int, int]:
        """The token grid: ``hw`` when given, else the square grid of the non-extra tokens."""
        if hw is not None:
            return tuple(hw)
        n = num_tokens - self.num_extra_tokens
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(f'{n} grid tokens are not a square: pass hw=(H, W) to the attention')
        return side, side

    def attention(self, x: Tensor, hw: Optional[Tuple[int, int]] = None,
                  bias: Optional[LogitBias] = None) -> Tuple[Tensor, Tensor]:
        """``(output, attention map)``; ``bias`` overrides the provider (analysis tools)."""
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dims).permute(
            2, 0, 3, 1, 4)
        if bias is None and self.bias_provider is not None:
            # providers that ignore the token layout (e.g. a temperature) set ``needs_grid = False``
            # and so also work on non-square token sets without ``hw``
            if getattr(self.bias_provider, 'needs_grid', True):
                hw = self.grid(n, hw)
            bias = self.bias_provider(x=x, q=q, k=k, hw=hw)
        attn = biased_softmax((q * self.scale) @ k.transpose(-2, -1), bias)
        out = self.attn_drop(attn) @ v
        out = out.transpose(1, 2).reshape(b, n, self.num_heads * self.head_dims)
        return self.out_drop(self.proj_drop(self.proj(out))), attn

    def forward(self, x: Tensor, hw: Optional[Tuple[int, int]] = None) -> Tensor:
        return self.attention(x, hw)[0]


def swap_attention(model: nn.Module, bias_provider: Union[None, dict, nn.Module, callable] = None,
                   num_extra_tokens: Optional[int] = None) -> int:
    """Replace every mmpretrain ``MultiheadAttention`` in ``model`` by a :class:`BiasedSelfAttention`
    with the same weights (same keys), each with its own provider built from ``bias_provider``.

    ``bias_provider`` may be a config dict (built once per layer), a callable ``f(layer_index,
    attn) -> provider`` or ``None``. ``num_extra_tokens`` defaults to the model's own attribute
    (mmpretrain's ViT sets it). Returns the number of swapped layers.
    """
    from mmpretrain.models.utils import MultiheadAttention
    if num_extra_tokens is None:
        num_extra_tokens = getattr(model, 'num_extra_tokens', 0)
    targets = [(name, m) for name, m in model.named_modules() if isinstance(m, MultiheadAttention)]
    for index, (name, old) in enumerate(targets):
        if (old.v_shortcut or not isinstance(old.gamma1, nn.Identity)
                or old.input_dims != old.embed_dims or old.proj.bias is None):
            raise NotImplementedError(f'{name}: v_shortcut / layer-scale / input_dims / no '
                                      'proj-bias attention cannot be swapped for '
                                      'BiasedSelfAttention')
        if callable(bias_provider) and not isinstance(bias_provider, (dict, nn.Module)):
            provider = bias_provider(index, old)
        else:
            provider = bias_provider
        new = BiasedSelfAttention(old.embed_dims, old.num_heads, qkv_bias=old.qkv.bias is not None,
                                  # mmpretrain scales by head_dims**-0.5 even when given
                                  # a qk_scale
                                  qk_scale=old.head_dims**-0.5, attn_drop=old.attn_drop,
                                  proj_drop=old.proj_drop.p, bias_provider=provider,
                                  num_extra_tokens=num_extra_tokens, head_dims=old.head_dims)
        missing, unexpected = new.load_state_dict(old.state_dict(), strict=False)
        assert not unexpected and all(k.startswith('bias_provider.') for k in missing), \
            (missing, unexpected)
        new.to(old.qkv.weight.device, old.qkv.weight.dtype)
        new.out_drop = old.out_drop
        parent = model.get_submodule(name.rpartition('.')[0]) if '.' in name else model
        setattr(parent, name.rpartition('.')[2], new)
    return len(targets)
