"""Layer masking for CNNs: "Towards Improved Input Masking for Convolutional Neural Networks".

Balasubramanian & Feizi, ICCV 2023 (arXiv:2211.14646); official code SriramB-98/layer_masking
(``sal_layers.py``, ``sal_resnet.py``). Instead of painting removed pixels grey or black, the
binary mask (1 = keep, 0 = removed) travels through the network with the features:

* convolution: the removed pixels of the input are first filled by *neighbour padding* (an
  iterative 3×3 mean of the valid neighbours, as many iterations as the kernel is wide), or left at
  zero, or the convolution is renormalised by the mask coverage (partial convolution); the output is
  multiplied by the new mask ``maxpool_k,s,p(mask)`` of the incoming mask;
* batch norm / activations: ``f(x·m)·m``; max pool: ``pool(x)·pool(m)``; average pool (ResNet-D
  shortcut): ``pool(x)·[pool(m) > 0]``; global average pool: ``mean(x·m) / (mean(m) + 1e-8)``;
* residual blocks: the identity branch carries its own mask, ``m = m_branch·m_identity`` and
  ``x = (x_branch + x_identity)·m`` before the final activation.

:class:`LayerMaskedResNet` is mmpretrain's :class:`~mmpretrain.models.ResNet` (same modules, keys,
init, ``frozen_stages``…) with this masked forward; without a mask it *is* the plain ResNet
forward. The official code only supports Bottleneck networks (its BasicBlock concatenates the
(x, mask) tuples); here BasicBlock uses the Bottleneck rule, so ResNet-18/34 work as well.
"""
import contextlib
from typing import Iterator, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmpretrain.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ...registry import MODELS

__all__ = ['LayerMaskedResNet', 'neighbour_fill', 'masked_conv', 'masked_pointwise',
           'masked_max_pool', 'masked_avg_pool', 'masked_global_avg_pool', 'normalize_mask',
           'mode_from_it', 'layer_masked_resnet_stages', 'use_layer_mask', 'MASK_MODES']

#: ``'fill'``: neighbour padding before every conv (official ``it[0] > 0``); ``'zero'``: removed
#: pixels stay 0 (``it[0] == 0``); ``'pconv'``: partial-convolution renormalisation (``it[0] < 0``).
MASK_MODES = ('fill', 'zero', 'pconv')


def mode_from_it(it: Union[int, Sequence[int]]) -> str:
    """The mode of the official ``it`` argument (only its first element matters)."""
    first = int(it[0] if isinstance(it, (list, tuple)) else it)
    return 'fill' if first > 0 else ('zero' if first == 0 else 'pconv')


def _check_mode(mode: str) -> str:
    if mode not in MASK_MODES:
        raise ValueError(f'layer-masking mode must be one of {MASK_MODES}, got {mode!r}')
    return mode


def normalize_mask(mask: Tensor, x: Tensor) -> Tensor:
    """A ``(B, 1, H, W)`` float mask on ``x``'s grid from ``(H, W)``, ``(B, H, W)`` or
    ``(B, 1, H, W)`` (bool or float; 1 = keep, 0 = removed)."""
    if mask.dim() == 2:
        mask = mask[None, None]
    elif mask.dim() == 3:
        mask = mask[:, None]
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError('layer mask must be (H, W), (B, H, W) or (B, 1, H, W), got '
                         f'{tuple(mask.shape)}')
    if tuple(mask.shape[-2:]) != tuple(x.shape[-2:]):
        raise ValueError(f'layer mask is {tuple(mask.shape[-2:])} but the input is '
                         f'{tuple(x.shape[-2:])}: give the mask on the (preprocessed) input grid')
    mask = mask.to(device=x.device, dtype=x.dtype)
    if mask.shape[0] == 1 and x.shape[0] > 1:
        mask = mask.expand(x.shape[0], -1, -1, -1)
    return mask


def neighbour_fill(x: Tensor, mask: Tensor, iters: int, eps: float = 1e-5) -> Tensor:
    """Neighbour padding (official ``fast_fmm``): ``iters`` times, every removed pixel next to a
    valid one takes the mean of its valid 3×3 neighbours; valid pixels never change.

    The fill is computed without gradient (only the valid pixels carry gradient), as in the paper.
    """
    x = x * mask
    channels = x.shape[1]
    box = x.new_ones(1, 1, 3, 3)
    box_c = box.expand(channels, -1, -1, -1)
    for _ in range(iters):
        with torch.no_grad():
            total = F.conv2d(x, box_c, groups=channels, padding=1)
            count = F.conv2d(mask, box, padding=1)
            fill = (1 - mask) * (total / (count + eps))
        x = x + fill.detach()
        mask = (mask + count).clip(0, 1)
    return x


def _mask_pool(conv: nn.Conv2d, mask: Tensor) -> Tensor:
    """The mask after a conv: max pool with the conv's window (official ``MyConv2d.maxpool``)."""
    return F.max_pool2d(mask, conv.kernel_size, conv.stride, conv.padding, conv.dilation)


def masked_conv(conv: nn.Conv2d, x: Tensor, mask: Tensor, mode: str = 'fill'
                ) -> Tuple[Tensor, Tensor]:
    """A layer-masked convolution (official ``MyConv2d`` with a tuple input).

    ``fill``: neighbour padding with ``kernel width`` iterations (1 for 1×1 convs), then the conv;
    ``zero``: the conv of ``x·m``; ``pconv``: ``conv(x)/c + b·(1 − 1/c)`` with
    ``c = conv(m, 1/(kh·kw)) + 1e-8`` (the official code would broadcast ``b`` along the width
    axis; here it is per channel — ResNet convs have no bias). Output times the new mask.
    """
    if mode == 'pconv':
        out = conv(x)
        with torch.no_grad():
            kh, kw = conv.kernel_size
            coverage = F.conv2d(mask, mask.new_full((1, 1, kh, kw), 1.0 / (kh * kw)), None,
                                conv.stride, conv.padding, conv.dilation) + 1e-8
        out = out * (1 / coverage)
        if conv.bias is not None:
            out = out + conv.bias.view(1, -1, 1, 1) * (1 - 1 / coverage)
    else:
        iters = conv.weight.shape[-1] if mode == 'fill' else 0
        out = conv(neighbour_fill(x, mask, iters))
    with torch.no_grad():
        new_mask = _mask_pool(conv, mask)
    return out * new_mask, new_mask


def masked_pointwise(fn: nn.Module, x: Tensor, mask: Tensor) -> Tensor:
    """Batch norm, ReLU or any element-wise layer: ``f(x·m)·m`` (official ``MyBatchNorm2d``)."""
    return fn(x * mask) * mask


def masked_max_pool(pool: nn.MaxPool2d, x: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
    """``pool(x)·pool(m)`` (official ``MyMaxPool2d``; x is not re-masked first)."""
    with torch.no_grad():
        new_mask = pool(mask)
    return pool(x) * new_mask, new_mask


def masked_avg_pool(pool: nn.AvgPool2d, x: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
    """``pool(x)·[pool(m) > 0]`` (official ``MyAvgPool2d``), for ResNet-D shortcuts."""
    with torch.no_grad():
        new_mask = (pool(mask) > 0).to(x.dtype)
    return pool(x) * new_mask, new_mask


def masked_global_avg_pool(x: Tensor, mask: Optional[Tensor]) -> Tensor:
    """``mean(x·m) / (mean(m) + 1e-8)`` over H, W (official ``MyAdaptiveAvgPool2d``), ``(B, C)``;
    the plain mean when ``mask`` is None."""
    if mask is None:
        return x.mean(dim=(2, 3))
    return F.adaptive_avg_pool2d(x * mask, 1).flatten(1) / (
        F.adaptive_avg_pool2d(mask, 1).flatten(1) + 1e-8)


def _masked_sequential(seq: nn.Module, x: Tensor, mask: Tensor, mode: str
                       ) -> Tuple[Tensor, Tensor]:
    """A shortcut / stem made of convs, norms, pools and activations."""
    modules = list(seq) if isinstance(seq, nn.Sequential) else [seq]
    for module in modules:
        if isinstance(module, nn.Conv2d):
            x, mask = masked_conv(module, x, mask, mode)
        elif isinstance(module, nn.MaxPool2d):
            x, mask = masked_max_pool(module, x, mask)
        elif isinstance(module, nn.AvgPool2d):
            x, mask = masked_avg_pool(module, x, mask)
        elif hasattr(module, 'conv') and hasattr(module, 'order'):  # mmcv ConvModule
            for layer in module.order:
                if layer == 'conv':
                    x, mask = masked_conv(module.conv, x, mask, mode)
                elif layer == 'norm' and module.with_norm:
                    x = masked_pointwise(module.norm, x, mask)
                elif layer == 'act' and module.with_activation:
                    x = masked_pointwise(module.activate, x, mask)
        elif isinstance(module, (_BatchNorm, nn.GroupNorm, nn.Identity)) or not any(
                True for _ in module.parameters(recurse=False)):
            x = masked_pointwise(module, x, mask)
        else:
            raise TypeError(f'layer masking does not know how to propagate a mask through '
                            f'{type(module).__name__}')
    return x, mask


def _masked_block(block: nn.Module, x: Tensor, mask: Tensor, mode: str) -> Tuple[Tensor, Tensor]:
    """A BasicBlock / Bottleneck with the official residual rule (sal_resnet ``Bottleneck``)."""
    if isinstance(block, Bottleneck):
        convs = [(block.conv1, block.norm1), (block.conv2, block.norm2), (block.conv3, block.norm3)]
    elif isinstance(block, BasicBlock):
        convs = [(block.conv1, block.norm1), (block.conv2, block.norm2)]
    else:
        raise TypeError(f'layer masking supports BasicBlock/Bottleneck, got {type(block).__name__}')
    out, out_mask = x, mask
    for i, (conv, norm) in enumerate(convs):
        out, out_mask = masked_conv(conv, out, out_mask, mode)
        out = masked_pointwise(norm, out, out_mask)
        if i < len(convs) - 1:
            out = masked_pointwise(block.relu, out, out_mask)
    if block.downsample is not None:
        identity, id_mask = _masked_sequential(block.downsample, x, mask, mode)
    else:
        identity, id_mask = x, mask
    out = block.drop_path(out)
    new_mask = out_mask * id_mask
    out = (out + identity) * new_mask
    return masked_pointwise(block.relu, out, new_mask), new_mask


def layer_masked_resnet_stages(resnet: ResNet, x: Tensor, mask: Tensor, mode: str = 'fill'
                               ) -> Iterator[Tuple[str, Tensor, Tensor]]:
    """Run any mmpretrain ``ResNet`` (V1c/V1d included) with layer masking, yielding
    ``(name, features, mask)`` after the stem max pool (``'maxpool'``) and every stage
    (``'layer1'``…). ``x`` is multiplied by the mask first (removed pixels never leak)."""
    _check_mode(mode)
    mask = normalize_mask(mask, x)
    x = x * mask
    if resnet.deep_stem:
        x, mask = _masked_sequential(resnet.stem, x, mask, mode)
    else:
        x, mask = masked_conv(resnet.conv1, x, mask, mode)
        x = masked_pointwise(resnet.norm1, x, mask)
        x = masked_pointwise(resnet.relu, x, mask)
    x, mask = masked_max_pool(resnet.maxpool, x, mask)
    yield 'maxpool', x, mask
    for name in resnet.res_layers:
        for block in getattr(resnet, name):
            x, mask = _masked_block(block, x, mask, mode)
        yield name, x, mask


@MODELS.register_module()
class LayerMaskedResNet(ResNet):
    """mmpretrain ResNet with layer masking (Balasubramanian & Feizi, ICCV 2023).

    Same arguments, modules and state-dict keys as :class:`mmpretrain.models.ResNet` (any
    mmpretrain ResNet checkpoint loads), plus:

    Args:
        mask_mode: ``'fill'`` (neighbour padding, the paper's layer masking), ``'zero'`` or
            ``'pconv'`` (partial-convolution renormalisation; note that it also renormalises the
            zero padding at the image border, so an all-ones mask is *not* the plain forward).
        masked_pooling: return the masked global average ``mean(x·m)/mean(m)`` of each output
            (``(B, C)`` vectors, as the official classifier) instead of feature maps; use with
            ``neck=None`` in an ``ImageClassifier`` (GlobalAveragePooling has no weights, so
            checkpoints of the plain classifier still load).
        stage_blocks: blocks per stage overriding ``depth``'s (e.g. small test networks).

    The mask (1 = keep, 0 = removed, on the input grid) is given as ``forward(x, mask=...)`` or set
    on the module (:meth:`set_mask`, :func:`use_layer_mask`) for use inside a classifier; without a
    mask the forward is exactly mmpretrain's. ``forward(..., return_masks=True)`` also returns the
    output masks.
    """

    def __init__(self, depth: int, mask_mode: str = 'fill', masked_pooling: bool = False,
                 stage_blocks: Optional[Sequence[int]] = None, **kwargs) -> None:
        if stage_blocks is not None:
            if depth not in ResNet.arch_settings:
                raise KeyError(f'invalid depth {depth} for LayerMaskedResNet: use one of '
                               f'{sorted(ResNet.arch_settings)} (its block type) with stage_blocks')
            block = ResNet.arch_settings[depth][0]
            object.__setattr__(self, 'arch_settings',
                               {**ResNet.arch_settings, depth: (block, tuple(stage_blocks))})
        elif depth not in ResNet.arch_settings:
            raise KeyError(f'invalid depth {depth} for LayerMaskedResNet: use one of '
                           f'{sorted(ResNet.arch_settings)}')
        num_stages = kwargs.get('num_stages', 4)
        out_indices = kwargs.get('out_indices', (3, ))
        out_indices = (out_indices, ) if isinstance(out_indices, int) else out_indices
        kwargs['out_indices'] = tuple(i % num_stages for i in out_indices)  # allow -1
        super().__init__(depth, **kwargs)
        self.mask_mode = _check_mode(mask_mode)
        self.masked_pooling = masked_pooling
        self._mask: Optional[Tensor] = None

    def train(self, mode: bool = True) -> 'LayerMaskedResNet':
        """mmpretrain's ``train`` (frozen stages, ``norm_eval``), returning ``self``."""
        super().train(mode)
        return self

    def set_mask(self, mask: Optional[Tensor], mode: Optional[str] = None) -> None:
        """Mask used by the next forwards that get no ``mask`` argument (None: plain forward)."""
        self._mask = mask
        if mode is not None:
            self.mask_mode = _check_mode(mode)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None, mask_mode: Optional[str] = None,
                return_masks: bool = False):
        """Features of ``out_indices`` (masked features when a mask is given or set; pooled
        ``(B, C)`` vectors with ``masked_pooling``); with ``return_masks`` also their masks."""
        mask = self._mask if mask is None else mask
        if mask is None:
            outs = super().forward(x)
            masks = tuple(None for _ in outs)
        else:
            mode = _check_mode(mask_mode or self.mask_mode)
            outs, masks = [], []
            for i, (_, feat, feat_mask) in enumerate(
                    list(layer_masked_resnet_stages(self, x, mask, mode))[1:]):
                if i in self.out_indices:
                    outs.append(feat)
                    masks.append(feat_mask)
            outs, masks = tuple(outs), tuple(masks)
        if self.masked_pooling:
            outs = tuple(masked_global_avg_pool(o, m) for o, m in zip(outs, masks))
        return (outs, masks) if return_masks else outs


def _find_layer_masked(model: nn.Module) -> LayerMaskedResNet:
    if isinstance(model, LayerMaskedResNet):
        return model
    for module in model.modules():
        if isinstance(module, LayerMaskedResNet):
            return module
    raise TypeError(f'{type(model).__name__} contains no LayerMaskedResNet; convert a ResNet '
                    f'classifier with mmmask.evaluation.explanation.to_layer_masked')


@contextlib.contextmanager
def use_layer_mask(model: nn.Module, mask: Optional[Tensor], mode: Optional[str] = None):
    """``with use_layer_mask(classifier, mask, 'fill'): classifier(inputs)``: sets the mask on
    the model's :class:`LayerMaskedResNet` for the duration of the block."""
    backbone = _find_layer_masked(model)
    old_mask, old_mode = backbone._mask, backbone.mask_mode
    backbone.set_mask(mask, mode)
    try:
        yield model
    finally:
        backbone._mask, backbone.mask_mode = old_mask, old_mode
