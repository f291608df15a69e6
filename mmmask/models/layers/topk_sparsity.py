"""Top-K activation sparsity (Li et al., "Emergence of Shape Bias in Convolutional Neural Networks
through Activation Sparsity", NeurIPS 2023; used by the DiSRT paper, arXiv 2506.00718, to restore
the global-structure sensitivity that classification fine-tuning removes).

Per sample and channel, only the ``keep`` spatial positions with the largest **absolute**
activation survive; every other position is set to zero. As in the official ``TopKLayer``
(Crazy-Jack/nips2023_shape_vs_texture, ``modelvshuman/models/pytorch/topK/topK.py``):

* ``keep = int(max(1, k * H * W))`` (Python float product, truncated: ``rounding='floor'``, the
  default); ``rounding='ceil'`` gives ``max(1, ceil(k * H * W))`` instead;
* the ranking is over ``|x|`` but the kept values keep their sign;
* exactly ``keep`` positions are kept per (sample, channel) even with ties (the positions that
  ``torch.topk`` returns win), so a channel has exactly ``keep`` non-zeros when its values are
  distinct and non-zero;
* ``k == 1`` returns the input unchanged; the mask is a constant, so gradients flow only through
  the kept positions.

Token sequences ``(N, L, C)`` (ViT / Swin layers) are sparsified per channel over the tokens; the
``num_prefix_tokens`` leading tokens (CLS / distillation tokens) are left untouched. This is our
assumption: the papers only use convolutional feature maps.

:func:`add_topk_sparsity` puts the op after named submodules of any built model with forward
hooks (no parameters, so state-dict keys are unchanged); ``dict(type='mmmask.WithTopKSparsity',
backbone=dict(type='mmpretrain.ResNet', depth=50), k=0.1, after=['layer3', 'layer4'])`` does it
by config and returns the upstream backbone itself (its class, outputs and checkpoint keys).
"""
import copy
import functools
import math
from typing import Any, Dict, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from ...registry import MODELS

__all__ = ['TopKSparsity', 'topk_keep_count', 'topk_sparsify', 'add_topk_sparsity',
           'remove_topk_sparsity', 'WithTopKSparsity']


def topk_keep_count(k: float, size: int, rounding: str = 'floor') -> int:
    """Number of positions kept out of ``size``: ``int(max(1, k * size))`` as the official
    TopKLayer (``'floor'``) or ``max(1, ceil(k * size))`` (``'ceil'``), at most ``size``."""
    if not 0 < k <= 1:
        raise ValueError(f'Top-K fraction k must be in (0, 1], got {k}')
    if rounding == 'floor':
        keep = int(max(1, k * size))
    elif rounding == 'ceil':
        keep = max(1, math.ceil(k * size))
    else:
        raise ValueError(f"rounding must be 'floor' (official) or 'ceil', got {rounding!r}")
    return min(keep, size)


def topk_sparsify(x: Tensor, k: float, layout: str = 'auto', num_prefix_tokens: int = 0,
                  rounding: str = 'floor') -> Tensor:
    """Keep the top-``k`` fraction of ``|x|`` per sample and channel over the spatial positions.

    Args:
        x: ``(N, C, H, W)`` feature maps (``layout='nchw'``, the default for 4-D inputs) or
            ``(N, L, C)`` tokens (``'nlc'``, the default for 3-D inputs); ``'nhwc'`` for
            channel-last maps (ConvNeXt blocks).
        k: kept fraction in (0, 1]; 1 is the identity.
        num_prefix_tokens: leading tokens of an ``nlc`` input left unchanged (CLS token).
        rounding: ``'floor'`` (official) or ``'ceil'``, see :func:`topk_keep_count`.
    """
    if k == 1:
        return x
    if layout == 'auto':
        layout = {4: 'nchw', 3: 'nlc'}.get(x.dim())
        if layout is None:
            raise ValueError(f'Top-K sparsity needs (N, C, H, W) maps or (N, L, C) tokens, got '
                             f'shape {tuple(x.shape)}')
    if layout == 'nchw':
        n, c = x.shape[:2]
        flat = x.reshape(n, c, -1)  # (N, C, P): rank over the last axis
        dim = 2
    elif layout == 'nhwc':
        n, c = x.shape[0], x.shape[-1]
        flat = x.reshape(n, -1, c)
        dim = 1
    elif layout == 'nlc':
        if num_prefix_tokens:
            prefix, rest = x[:, :num_prefix_tokens], x[:, num_prefix_tokens:]
            return torch.cat([prefix, topk_sparsify(rest, k, 'nlc', 0, rounding)], dim=1)
        flat, dim = x, 1
    else:
        raise ValueError(f"layout must be 'auto', 'nchw', 'nhwc' or 'nlc', got {layout!r}")
    keep = topk_keep_count(k, flat.shape[dim], rounding)
    index = flat.abs().topk(keep, dim=dim).indices
    mask = torch.zeros_like(flat).scatter_(dim, index, 1.)
    return (flat * mask).reshape(x.shape)


@MODELS.register_module()
class TopKSparsity(nn.Module):
    """Top-K activation sparsity as a layer (see the module docstring and
    :func:`topk_sparsify`). No parameters; active in training and evaluation alike."""

    def __init__(self, k: float = 0.1, layout: str = 'auto', num_prefix_tokens: int = 0,
                 rounding: str = 'floor') -> None:
        super().__init__()
        topk_keep_count(k, 1, rounding)  # validates k and rounding
        self.k, self.layout, self.rounding = float(k), layout, rounding
        self.num_prefix_tokens = int(num_prefix_tokens)

    def forward(self, x: Tensor) -> Tensor:
        return topk_sparsify(x, self.k, self.layout, self.num_prefix_tokens, self.rounding)

    def extra_repr(self) -> str:
        return (f'k={self.k}, layout={self.layout}, num_prefix_tokens={self.num_prefix_tokens}, '
                f'rounding={self.rounding}')


def _topk_hook(op: TopKSparsity, module: nn.Module, inputs: Any, output: Any) -> Any:
    """Forward hook: sparsify a module's output (the first element of a tuple output, e.g. the
    ``(tokens, hw_shape)`` of an mmpretrain Swin stage)."""
    if isinstance(output, Tensor):
        return op(output)
    if isinstance(output, tuple) and output and isinstance(output[0], Tensor):
        return (op(output[0]), ) + tuple(output[1:])
    raise TypeError(f'Top-K sparsity after {type(module).__name__}: its output is '
                    f'{type(output).__name__}, not a tensor or a tuple starting with one; choose '
                    'another module in `after`')


def add_topk_sparsity(model: nn.Module, after: Union[str, Sequence[str]],
                      k: Union[float, Sequence[float]] = 0.1, layout: str = 'auto',
                      num_prefix_tokens: Optional[int] = None,
                      rounding: str = 'floor') -> Dict[str, TopKSparsity]:
    """Apply :class:`TopKSparsity` to the outputs of the submodules named in ``after`` (names as
    in ``model.named_modules()``, e.g. ``'layer3'`` of an mmpretrain ResNet, ``'layers.5'`` of a
    ViT, ``'backbone.layer4'`` of a classifier) with forward hooks.

    ``k`` is one fraction or one per name. ``num_prefix_tokens=None`` takes the model's
    ``num_extra_tokens`` (mmpretrain ViTs: the CLS token) for token outputs, else 0. The hooks
    are plain functions (deep copies and pickles keep working) and add no parameters: the
    checkpoint keys do not change. Returns ``{name: op}``; ``model.topk_sparsity`` records them.
    """
    names = [after] if isinstance(after, str) else list(after)
    if not names:
        raise ValueError('add_topk_sparsity: `after` names no module')
    ks = [k] * len(names) if isinstance(k, (int, float)) else list(k)
    if len(ks) != len(names):
        raise ValueError(f'{len(ks)} Top-K fractions for {len(names)} modules in `after`')
    if num_prefix_tokens is None:
        num_prefix_tokens = int(getattr(model, 'num_extra_tokens', 0) or 0)
    modules = dict(model.named_modules())
    ops, handles = {}, getattr(model, '_topk_handles', {})
    for name, frac in zip(names, ks):
        if name not in modules:
            depth = name.count('.')
            close = [n for n in modules if n and (n.endswith(name) or name in n)]
            same_depth = [n for n in modules if n and n.count('.') == depth]
            raise KeyError(f'no submodule {name!r} to put Top-K sparsity after (names as in '
                           f'model.named_modules()); candidates: {(close or same_depth)[:16]}')
        if name in handles:
            handles.pop(name).remove()
        op = TopKSparsity(frac, layout, num_prefix_tokens, rounding)
        handles[name] = modules[name].register_forward_hook(functools.partial(_topk_hook, op))
        ops[name] = op
    model._topk_handles = handles
    record = dict(getattr(model, 'topk_sparsity', {}) or {})
    record.update({name: op.extra_repr() for name, op in ops.items()})
    model.topk_sparsity = record
    return ops


def remove_topk_sparsity(model: nn.Module) -> int:
    """Remove the hooks that :func:`add_topk_sparsity` put on ``model``; returns how many."""
    handles = getattr(model, '_topk_handles', {})
    for handle in handles.values():
        handle.remove()
    count = len(handles)
    model._topk_handles, model.topk_sparsity = {}, {}
    return count


def WithTopKSparsity(backbone: dict, k: Union[float, Sequence[float]] = 0.1,
                     after: Union[str, Sequence[str]] = ('layer3', 'layer4'),
                     layout: str = 'auto', num_prefix_tokens: Optional[int] = None,
                     rounding: str = 'floor', **overrides) -> nn.Module:
    """Build ``backbone`` (any scope, e.g. ``'mmpretrain.ResNet'``) with Top-K sparsity after the
    submodules named in ``after`` (relative to the backbone); see :func:`add_topk_sparsity`.

    A factory like ``mmmask.WithAttentionBias``: it returns the upstream backbone itself, so
    outputs, ``out_indices`` and checkpoint keys are the upstream ones. ``**overrides`` are merged
    into ``backbone`` (``out_indices``, ``init_cfg``, ...).
    """
    cfg = dict(copy.deepcopy(backbone), **overrides)
    model = MODELS.build(cfg)
    add_topk_sparsity(model, after, k, layout, num_prefix_tokens, rounding)
    return model


MODELS.register_module(name='WithTopKSparsity', module=WithTopKSparsity)
