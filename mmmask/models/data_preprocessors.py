"""Data preprocessors of the methods."""
from numbers import Number
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmseg.models.data_preprocessor import SegDataPreProcessor

from ..registry import MODELS

__all__ = ['DenseDataPreprocessor', 'stack_dense_batch']


def stack_dense_batch(inputs: List[torch.Tensor],
                      data_samples: Optional[list] = None,
                      size: Optional[Tuple[int, int]] = None,
                      size_divisor: Optional[int] = None,
                      pad_val: Number = 0,
                      gt_pad_vals: Optional[Dict[str, Number]] = None) -> Tuple[torch.Tensor, list]:
    """mmseg ``stack_batch`` with one padding value per ground-truth field.

    Pads every CxHxW input at the bottom/right to ``size`` (a fixed ``(h, w)``) or to the batch's
    largest size rounded up to ``size_divisor`` (with neither: the batch's largest size), and each
    ``PixelData`` field ``k`` of ``gt_pad_vals`` present in a data sample with ``gt_pad_vals[k]``.
    Sets ``img_shape``, ``pad_shape`` and ``padding_size`` in the samples' metainfo as mmseg does.
    Without ``data_samples`` returns dicts of ``img_padding_size`` and ``pad_shape`` instead.
    """
    assert isinstance(inputs, list) and inputs, 'inputs must be a non-empty list of tensors'
    assert all(t.ndim == 3 for t in inputs), 'every input must be a CxHxW tensor'
    assert len({t.shape[0] for t in inputs}) == 1, \
        f'inputs have different channels: {[t.shape[0] for t in inputs]}'
    assert size is None or size_divisor is None, 'give at most one of size and size_divisor'
    gt_pad_vals = dict(gt_pad_vals or {})
    max_size = np.stack([(t.shape[-2], t.shape[-1]) for t in inputs]).max(0)
    if size_divisor is not None and size_divisor > 1:
        max_size = (max_size + size_divisor - 1) // size_divisor * size_divisor
    target = tuple(size[-2:]) if size is not None else tuple(int(s) for s in max_size)
    padded_inputs, padded_samples = [], []
    for i, tensor in enumerate(inputs):
        padding_size = (0, max(target[1] - tensor.shape[-1], 0), 0,
                        max(target[0] - tensor.shape[-2], 0))
        pad_img = F.pad(tensor, padding_size, value=pad_val)
        padded_inputs.append(pad_img)
        if data_samples is None:
            padded_samples.append(dict(img_padding_size=padding_size,
                                       pad_shape=pad_img.shape[-2:]))
            continue
        sample = data_samples[i]
        pad_shape = None
        for key, value in gt_pad_vals.items():
            if key in sample:
                field = getattr(sample, key)
                data = field.data
                del field.data
                field.data = F.pad(data, padding_size, value=value)
                pad_shape = field.shape
        sample.set_metainfo(dict(img_shape=tensor.shape[-2:], pad_shape=pad_shape,
                                 padding_size=padding_size))
        padded_samples.append(sample)
    return torch.stack(padded_inputs, dim=0), padded_samples


@MODELS.register_module()
class DenseDataPreprocessor(SegDataPreProcessor):
    """mmseg ``SegDataPreProcessor`` that pads each ground-truth map with its own value.

    mmseg's ``stack_batch`` pads ``gt_depth_map`` with ``seg_pad_val`` (255), which depth losses
    and metrics read as 255 m of valid depth. Here, in training, ``gt_sem_seg`` and
    ``gt_edge_map`` are padded with ``seg_pad_val`` (255 = ignore), ``gt_depth_map`` with
    ``depth_pad_val`` (0 = invalid) and ``gt_normal_map`` with ``normal_pad_val`` (0 = the invalid
    zero vector). Images are normalised and padded as in mmseg (to ``size`` or to a multiple of
    ``size_divisor``; unlike mmseg, with neither the batch is padded to its largest image).
    Test-time behaviour is mmseg's unchanged (``test_cfg`` padding; ground truth untouched).

    Args:
        depth_pad_val: padding value of ``gt_depth_map``.
        normal_pad_val: padding value of ``gt_normal_map``.
        **kwargs: the arguments of mmseg ``SegDataPreProcessor`` (``mean``, ``std``, ``size``,
            ``size_divisor``, ``pad_val``, ``seg_pad_val``, ``bgr_to_rgb``, ``rgb_to_bgr``,
            ``batch_augments``, ``test_cfg``).
    """

    def __init__(self, depth_pad_val: Number = 0, normal_pad_val: Number = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.depth_pad_val = depth_pad_val
        self.normal_pad_val = normal_pad_val

    @property
    def gt_pad_vals(self) -> Dict[str, Number]:
        return dict(gt_sem_seg=self.seg_pad_val, gt_edge_map=self.seg_pad_val,
                    gt_depth_map=self.depth_pad_val, gt_normal_map=self.normal_pad_val)

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        if not training:
            return super().forward(data, training=False)
        data = self.cast_data(data)
        inputs: Sequence[torch.Tensor] = data['inputs']
        data_samples = data.get('data_samples', None)
        assert data_samples is not None, 'During training, `data_samples` must be defined.'
        if self.channel_conversion and inputs[0].size(0) == 3:
            inputs = [x[[2, 1, 0], ...] for x in inputs]
        inputs = [x.float() for x in inputs]
        if self._enable_normalize:
            inputs = [(x - self.mean) / self.std for x in inputs]
        inputs, data_samples = stack_dense_batch(
            list(inputs), data_samples, size=self.size, size_divisor=self.size_divisor,
            pad_val=self.pad_val, gt_pad_vals=self.gt_pad_vals)
        if self.batch_augments is not None:
            inputs, data_samples = self.batch_augments(inputs, data_samples)
        return dict(inputs=inputs, data_samples=data_samples)
