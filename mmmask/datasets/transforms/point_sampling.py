"""ViT-P point supervision (official code: github sajjad-sh33/ViT-P, ``dinov2/data/datasets``).

ViT-P classifies P points of an image: each point takes the class of the segment it lies in. The
official ADE20K training set applies torchvision v2 ``RandomResizedCrop`` (518x518, scale (0.5, 1),
ratio (0.75, 1.3333), nearest), ``RandomRotation((-60, 60))`` and ``RandomHorizontalFlip`` jointly
to image and label map, then samples P non-void segment labels uniformly *with replacement* and one
pixel uniformly inside each. A point is ``2 * (y / h, x / w) - 1``: **row first**, with ``(h, w)``
the label map's shape. The Objects365 variant samples a point inside the box of an annotation.

The transforms here work on mmseg-style results (``img`` HxWx3 uint8, ``gt_seg_map`` HxW uint8 with
255 = ignore) and draw from numpy's global RNG, which mmengine's ``randomness.seed`` seeds, so
pipelines are reproducible. The geometric transforms do not move ``gt_bboxes``; box supervision
from given boxes is meant for pipelines without them (as the official Objects365 set).
"""
from numbers import Number
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement

from ...registry import TRANSFORMS

_INTERPOLATIONS = ('nearest', 'bilinear', 'bicubic', 'area', 'lanczos')


def _check_interpolation(interpolation: str) -> str:
    """Return ``interpolation`` if mmcv knows it, else raise a ValueError listing the choices."""
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f'interpolation={interpolation!r} is not one of {_INTERPOLATIONS}')
    return interpolation


def _seg_keys(results: dict) -> List[str]:
    """The segmentation-map keys of ``results`` that exist (mmseg's ``seg_fields``)."""
    return [k for k in results.get('seg_fields', ['gt_seg_map']) if k in results]


@TRANSFORMS.register_module()
class SegRandomResizedCrop(BaseTransform):
    """torchvision's ``RandomResizedCrop`` on the image and every segmentation map.

    Crop parameters are sampled as torchvision does: area fraction uniform in ``scale``, aspect
    ratio (w/h) log-uniform in ``ratio``; up to ``max_attempts`` draws, then the central crop of the
    largest box with a ratio inside ``ratio``. The crop is resized to ``size`` with
    ``interpolation`` for the image and nearest for the maps. Updates ``img_shape``.

    Args:
        size: output ``(h, w)``, or one int for a square.
        scale: range of the crop's area as a fraction of the image's.
        ratio: range of the crop's aspect ratio (width / height).
        interpolation: mmcv interpolation of the image.
        max_attempts: random draws before the central-crop fallback (10 in torchvision).
    """

    def __init__(self,
                 size: Union[int, Sequence[int]] = (518, 518),
                 scale: Sequence[float] = (0.5, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3),
                 interpolation: str = 'nearest',
                 max_attempts: int = 10) -> None:
        if isinstance(size, Number):
            size = (int(size), int(size))
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f'size={size!r} must be a positive int or a (h, w) pair')
        if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            raise ValueError(f'scale={scale!r} must be (min, max) with 0 < min <= max')
        if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f'ratio={ratio!r} must be (min, max) with 0 < min <= max')
        if max_attempts < 0:
            raise ValueError(f'max_attempts={max_attempts} must be >= 0')
        self.size = (int(size[0]), int(size[1]))
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.interpolation = _check_interpolation(interpolation)
        self.max_attempts = int(max_attempts)
        from mmpretrain.datasets.transforms import RandomResizedCrop
        self._sampler = RandomResizedCrop(
            scale=self.size[::-1], crop_ratio_range=self.scale, aspect_ratio_range=self.ratio,
            max_attempts=self.max_attempts)

    def get_params(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """Crop ``(top, left, h, w)`` of a ``height`` x ``width`` image: torchvision's rule, as
        implemented by mmpretrain's ``RandomResizedCrop.rand_crop_params``."""
        return self._sampler.rand_crop_params(np.broadcast_to(np.uint8(0), (height, width)))

    def transform(self, results: dict) -> dict:
        """Crop and resize ``img`` and the segmentation maps with one set of parameters."""
        img = results['img']
        top, left, h, w = self.get_params(*img.shape[:2])
        out_h, out_w = self.size
        crop = img[top:top + h, left:left + w]
        results['img'] = mmcv.imresize(crop, (out_w, out_h), interpolation=self.interpolation)
        for key in _seg_keys(results):
            seg = results[key][top:top + h, left:left + w]
            results[key] = mmcv.imresize(seg, (out_w, out_h), interpolation='nearest')
        results['img_shape'] = results['img'].shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, scale={self.scale}, '
                f'ratio={self.ratio}, interpolation={self.interpolation!r}, '
                f'max_attempts={self.max_attempts})')


@TRANSFORMS.register_module()
class SegRandomRotate(BaseTransform):
    """Rotate the image and the segmentation maps by one random angle about the centre.

    The output keeps the input size (corners are cut, uncovered pixels padded), as torchvision's
    ``RandomRotation`` without ``expand``. Positive angles turn clockwise (mmcv's convention).

    Args:
        degree: the angle is uniform in ``[-degree, degree]``, or in ``degree = (min, max)``.
        prob: probability of rotating at all.
        interpolation: mmcv interpolation of the image (maps always use nearest).
        pad_val: image fill of uncovered pixels (a number fills every channel, or one per channel).
        seg_pad_val: map fill of uncovered pixels (255 = ignore; the official code fills ADE's 0,
            its void label, which is 255 after mmseg's ``reduce_zero_label``).
    """

    def __init__(self,
                 degree: Union[float, Sequence[float]] = 60.0,
                 prob: float = 1.0,
                 interpolation: str = 'nearest',
                 pad_val: Union[int, float, Sequence[float]] = 0,
                 seg_pad_val: int = 255) -> None:
        if isinstance(degree, Number):
            if degree < 0:
                raise ValueError(f'degree={degree} must be >= 0 (or pass a (min, max) pair)')
            degree = (-float(degree), float(degree))
        if len(degree) != 2 or degree[0] > degree[1]:
            raise ValueError(f'degree={degree!r} must be a number or (min, max) with min <= max')
        if not 0 <= prob <= 1:
            raise ValueError(f'prob={prob} must lie in [0, 1]')
        self.degree = (float(degree[0]), float(degree[1]))
        self.prob = float(prob)
        self.interpolation = _check_interpolation(interpolation)
        self.pad_val = pad_val
        self.seg_pad_val = seg_pad_val

    def transform(self, results: dict) -> dict:
        """Rotate ``img`` and the segmentation maps in place in ``results``."""
        if self.prob < 1 and np.random.rand() >= self.prob:
            return results
        angle = float(np.random.uniform(*self.degree))
        img = results['img']
        pad_val = self.pad_val
        if isinstance(pad_val, Number) and img.ndim == 3:
            # cv2 reads a bare number as Scalar(v, 0, 0, 0): fill every channel instead
            pad_val = (pad_val, ) * img.shape[2]
        results['img'] = mmcv.imrotate(img, angle, border_value=pad_val,
                                       interpolation=self.interpolation)
        for key in _seg_keys(results):
            results[key] = mmcv.imrotate(results[key], angle, border_value=self.seg_pad_val,
                                         interpolation='nearest')
        results['rotate_angle'] = angle
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(degree={self.degree}, prob={self.prob}, '
                f'interpolation={self.interpolation!r}, pad_val={self.pad_val}, '
                f'seg_pad_val={self.seg_pad_val})')


@TRANSFORMS.register_module()
class CoarsenSegMap(BaseTransform):
    """Simulate coarse annotations (as Cityscapes' gtCoarse) from a fine ``gt_seg_map``.

    Every labelled region (all pixels of one class, connected or not) is eroded by ``erode_px``
    pixels (square structuring element, i.e. chessboard distance) and the removed band becomes
    ``ignore_index``: a pixel keeps its label only if its ``(2 * erode_px + 1)``-square window holds
    that label alone. Ignore pixels count as another label; the image frame does not erode.

    Args:
        erode_px: erosion radius in pixels (0 leaves the map as is).
        ignore_index: label of unlabelled pixels.
    """

    def __init__(self, erode_px: int = 3, ignore_index: int = 255) -> None:
        if erode_px < 0:
            raise ValueError(f'erode_px={erode_px} must be >= 0')
        self.erode_px = int(erode_px)
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        """Replace ``gt_seg_map`` by its coarsened copy."""
        seg = results['gt_seg_map']
        if self.erode_px == 0:
            return results
        kernel = np.ones((2 * self.erode_px + 1, ) * 2, np.uint8)
        low = cv2.erode(seg, kernel)  # window min / max; the frame is neutral for both
        high = cv2.dilate(seg, kernel)
        coarse = seg.copy()
        coarse[(low != seg) | (high != seg)] = self.ignore_index
        results['gt_seg_map'] = coarse
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(erode_px={self.erode_px}, '
                f'ignore_index={self.ignore_index})')


@TRANSFORMS.register_module()
class SampleSegmentPoints(BaseTransform):
    """Sample ViT-P's P training points and their labels.

    ``label_source='mask'`` (ADE20K/COCO/Cityscapes sets): draw ``num_points`` labels uniformly
    with replacement from the unique labels of ``gt_seg_map`` other than ``ignore_index``, then
    one pixel uniformly among the pixels of each drawn label. ``label_source='box'`` (Objects365
    set): draw boxes uniformly with replacement, then one pixel uniformly inside each (clipped to
    the map). Boxes are ``results['gt_bboxes']`` (mmdet ``HorizontalBoxes`` or an (N, 4) xyxy
    array) with ``results['gt_bboxes_labels']`` when ``gt_bboxes`` is present, otherwise the
    bounding boxes of the 8-connected components of each class of ``gt_seg_map``.

    Writes ``results['points']`` (P, 2) float32 in [-1, 1], ``2 * (row / h, col / w) - 1`` with
    ``(h, w)`` the map's shape (the image's when there is no map), and ``results['point_labels']``
    (P,) int64 class indices.

    Returns ``None`` when the image has no valid segment (or box): mmengine's ``BaseDataset``
    then draws another index in training (up to ``max_refetch`` times) and raises in test mode.

    Args:
        num_points: P, points per image.
        label_source: ``'mask'`` or ``'box'``.
        ignore_index: label of unlabelled pixels (and of boxes to skip).
    """

    def __init__(self, num_points: int = 250, label_source: str = 'mask',
                 ignore_index: int = 255) -> None:
        if label_source not in ('mask', 'box'):
            raise ValueError(f"label_source={label_source!r}: use 'mask' (points in segments) "
                             "or 'box' (points in boxes)")
        if int(num_points) != num_points or num_points < 1:
            raise ValueError(f'num_points={num_points!r}: pass an integer >= 1 (ViT-P samples '
                             'P points per image)')
        self.num_points = int(num_points)
        self.label_source = label_source
        self.ignore_index = ignore_index

    @staticmethod
    def _map_shape(results: dict) -> Tuple[int, int]:
        """``(h, w)`` that normalises the points: the label map's, else the image's."""
        if 'gt_seg_map' in results:
            return tuple(results['gt_seg_map'].shape[:2])
        if 'img' in results:
            return tuple(results['img'].shape[:2])
        return tuple(results['img_shape'][:2])

    def _sample_mask(self, seg: np.ndarray) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Rows, cols and labels of points drawn segment-first from ``seg``."""
        flat = seg.ravel()
        order = np.argsort(flat, kind='stable')
        sorted_labels = flat[order]
        labels = np.unique(sorted_labels)
        labels = labels[labels != self.ignore_index]
        if labels.size == 0:
            return None
        choice = np.random.randint(0, labels.size, size=self.num_points)
        starts = np.searchsorted(sorted_labels, labels, side='left')[choice]
        ends = np.searchsorted(sorted_labels, labels, side='right')[choice]
        pixel = order[np.random.randint(starts, ends)]
        rows, cols = np.divmod(pixel, seg.shape[1])
        return rows, cols, labels[choice]

    def _boxes(self, results: dict) -> Tuple[np.ndarray, np.ndarray]:
        """(N, 4) xyxy boxes and (N,) labels: given ones, or those of the map's components."""
        if 'gt_bboxes' in results:
            boxes = results['gt_bboxes']
            boxes = getattr(boxes, 'tensor', boxes)
            if isinstance(boxes, torch.Tensor):
                boxes = boxes.detach().cpu().numpy()
            boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
            if 'gt_bboxes_labels' not in results:
                raise KeyError("label_source='box' with gt_bboxes needs gt_bboxes_labels: load "
                               'them with LoadAnnotations(with_bbox=True, with_label=True)')
            labels = np.asarray(results['gt_bboxes_labels']).reshape(-1).astype(np.int64)
            if len(labels) != len(boxes):
                raise ValueError(f'{len(boxes)} gt_bboxes but {len(labels)} gt_bboxes_labels')
            return boxes, labels
        seg = results['gt_seg_map']
        boxes: List[np.ndarray] = []
        labels: List[np.ndarray] = []
        for cls in np.unique(seg):
            if cls == self.ignore_index:
                continue
            n, _, stats, _ = cv2.connectedComponentsWithStats(
                (seg == cls).astype(np.uint8), connectivity=8)
            left, top, width, height = (stats[1:n, i].astype(np.float64) for i in range(4))
            boxes.append(np.stack([left, top, left + width, top + height], axis=1))
            labels.append(np.full(n - 1, cls, np.int64))
        if not boxes:
            return np.zeros((0, 4)), np.zeros(0, np.int64)
        return np.concatenate(boxes), np.concatenate(labels)

    def _sample_box(self, results: dict, h: int,
                    w: int) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Rows, cols and labels of points drawn box-first."""
        boxes, labels = self._boxes(results)
        x1, y1, x2, y2 = boxes.T
        valid = ((labels != self.ignore_index) & (x2 >= x1) & (y2 >= y1) & (x1 < w) & (y1 < h)
                 & (x2 > 0) & (y2 > 0))
        boxes, labels = boxes[valid], labels[valid]
        if len(boxes) == 0:
            return None
        choice = np.random.randint(0, len(boxes), size=self.num_points)
        box = boxes[choice]
        # Pixel c covers [c, c + 1): a box [x1, x2) holds pixels floor(x1) .. ceil(x2) - 1.
        col_lo = np.clip(np.floor(box[:, 0]), 0, w - 1).astype(np.int64)
        col_hi = np.maximum(np.clip(np.ceil(box[:, 2]) - 1, 0, w - 1).astype(np.int64), col_lo)
        row_lo = np.clip(np.floor(box[:, 1]), 0, h - 1).astype(np.int64)
        row_hi = np.maximum(np.clip(np.ceil(box[:, 3]) - 1, 0, h - 1).astype(np.int64), row_lo)
        cols = np.random.randint(col_lo, col_hi + 1)
        rows = np.random.randint(row_lo, row_hi + 1)
        return rows, cols, labels[choice]

    def transform(self, results: dict) -> Optional[dict]:
        """Add ``points`` and ``point_labels``; ``None`` if there is nothing to sample."""
        h, w = self._map_shape(results)
        if self.label_source == 'mask':
            sampled = self._sample_mask(results['gt_seg_map'])
        else:
            sampled = self._sample_box(results, h, w)
        if sampled is None:
            return None
        rows, cols, labels = sampled
        points = np.stack([rows / h, cols / w], axis=1) * 2 - 1
        results['points'] = points.astype(np.float32)
        results['point_labels'] = labels.astype(np.int64)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_points={self.num_points}, '
                f'label_source={self.label_source!r}, ignore_index={self.ignore_index})')


@TRANSFORMS.register_module()
class PackPointInputs(BaseTransform):
    """Pack an image and its sampled points for a ViT-P model.

    Returns ``dict(inputs=CHW tensor (the image's dtype, contiguous), data_samples=...)`` with a
    ``BaseDataElement`` whose data fields are ``points`` (P, 2) float32 and ``gt_point_labels``
    (P,) int64 and whose metainfo holds the ``meta_keys`` present in the results.

    Args:
        meta_keys: results keys copied into the data sample's metainfo when present.
    """

    def __init__(self, meta_keys: Sequence[str] = ('img_path', 'ori_shape', 'img_shape',
                                                   'scale_factor')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> Dict[str, Union[torch.Tensor, BaseDataElement]]:
        """Build ``inputs`` and ``data_samples``."""
        for key in ('points', 'point_labels'):
            if key not in results:
                raise KeyError(f'results have no {key!r}: put SampleSegmentPoints before '
                               'PackPointInputs in the pipeline')
        img = results['img']
        if img.ndim < 3:
            img = img[..., None]
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        metainfo = {k: results[k] for k in self.meta_keys if k in results}
        sample = BaseDataElement(
            metainfo=metainfo,
            points=torch.as_tensor(np.asarray(results['points']), dtype=torch.float32),
            gt_point_labels=torch.as_tensor(np.asarray(results['point_labels']),
                                            dtype=torch.int64))
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
