"""Attention probabilities from mmpretrain's ``MultiheadAttention``, which uses
``F.scaled_dot_product_attention`` and returns no weights. :class:`AttentionRecorder` hooks the
chosen layers' attention modules and recomputes ``softmax(q kᵀ · scale)`` from their input."""
from contextlib import contextmanager
from typing import Dict, Iterable, List

import torch
from torch import Tensor, nn


def attention_probs(attn: nn.Module, x: Tensor) -> Tensor:
    """``[B, heads, N, N]`` attention of an mmpretrain ``MultiheadAttention`` on input ``x``."""
    B, N, _ = x.shape
    heads = attn.num_heads
    qkv = attn.qkv(x).reshape(B, N, 3, heads, -1).permute(2, 0, 3, 1, 4)
    q, k = qkv[0], qkv[1]
    scale = q.shape[-1]**-0.5
    return torch.softmax((q * scale) @ k.transpose(-2, -1), dim=-1)


class AttentionRecorder:
    """Record attention maps of ``layers`` (modules with an ``attn`` attribute, e.g. the
    ``layers`` of an mmpretrain/mmmask ViT) during a forward.

    Example::

        rec = AttentionRecorder(teacher.layers, indices=[-1])
        with rec:
            teacher(x)
        attn = rec.maps[-1]          # [B, heads, N, N]
    """

    def __init__(self, layers: Iterable[nn.Module], indices: Iterable[int] = (-1, )):
        self.layers = list(layers)
        n = len(self.layers)
        self.indices = sorted({i % n for i in indices})
        self.maps: Dict[int, Tensor] = {}
        self._handles: List = []

    def __enter__(self):
        self.maps.clear()
        n = len(self.layers)
        for i in self.indices:
            attn = self.layers[i].attn

            def hook(module, args, i=i, n=n):
                probs = attention_probs(module, args[0])
                self.maps[i] = probs
                self.maps[i - n] = probs

            self._handles.append(attn.register_forward_pre_hook(hook))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()
        return False


@contextmanager
def recorded_attention(layers: Iterable[nn.Module], indices: Iterable[int] = (-1, )):
    """Functional form of :class:`AttentionRecorder`; yields its ``maps`` dict."""
    rec = AttentionRecorder(layers, indices)
    with rec:
        yield rec.maps
