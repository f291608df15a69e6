"""Surface-normal angular error, pooled over every valid pixel of the test set."""
import logging
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ...registry import METRICS


def _normal_map(sample: Any, key: str) -> np.ndarray:
    """``sample[key]['data']`` (a 3xHxW map) as a float64 array; a clear error if missing."""
    field = sample.get(key, None) if hasattr(sample, 'get') else getattr(sample, key, None)
    if field is None:
        what = 'prediction' if key.startswith('pred') else 'ground truth'
        raise KeyError(f'SurfaceNormalMetric: data sample has no {key!r} ({what}); the model must '
                       "write 'pred_normal_map' (3xHxW) and the pipeline pack 'gt_normal_map' "
                       '(LoadNormalAnnotation + PackDenseInputs)')
    data = field.get('data', None) if hasattr(field, 'get') else getattr(field, 'data', field)
    if data is None:
        raise KeyError(f"SurfaceNormalMetric: {key!r} has no 'data'")
    if isinstance(data, torch.Tensor):
        data = data.detach().float().cpu().numpy()
    data = np.asarray(data, dtype=np.float64)
    if data.ndim == 4 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 3 or data.shape[0] != 3:
        raise ValueError(f'SurfaceNormalMetric: {key!r} must be 3xHxW, got {data.shape}')
    return data


def angular_errors(pred: np.ndarray, gt: np.ndarray, valid_thr: float = 0.5) -> np.ndarray:
    """Angles in degrees between ``pred`` and ``gt`` (3xHxW) at the pixels where ``||gt|| > thr``.

    Both are normalised first; the cosine is clamped to [-1, 1]. A zero prediction counts as 90°.
    """
    gt_norm = np.linalg.norm(gt, axis=0)
    valid = gt_norm > valid_thr
    p = pred[:, valid]
    g = gt[:, valid] / gt_norm[valid]
    p = p / np.maximum(np.linalg.norm(p, axis=0), 1e-12)
    cos = np.clip((p * g).sum(0), -1.0, 1.0)
    return np.degrees(np.arccos(cos))


@METRICS.register_module()
class SurfaceNormalMetric(BaseMetric):
    """Angular error of surface normals (Bae et al. protocol), pooled over the whole test set.

    ``process`` reads ``pred_normal_map['data']`` and ``gt_normal_map['data']`` (3xHxW, same size)
    of each data sample. Pixels with ``||gt|| > valid_thr`` count (the zero vector marks invalid
    ground truth); both vectors are normalised, and the error is ``degrees(arccos(clamp(cos)))``.
    The statistics are over *all* valid pixels of all images together (not per-image averages):

    - ``normal_mean``, ``normal_median``, ``normal_rmse`` (= sqrt(mean e²)) in degrees;
    - ``normal_a{t}`` for t in ``thresholds`` (default 5, 7.5, 11.25, 22.5, 30): % of e < t.

    Mean, RMSE and the threshold percentages are exact (per-image sums and counts). The median
    comes from a pooled histogram of ``bin_width`` degrees, linearly interpolated inside the bin
    (error ≤ ``bin_width``); with ``bin_width=None`` every per-image error array is kept
    (float32) and the median is exact, at the cost of memory (~1.2 MB per 480x640 image).

    Args:
        valid_thr: minimum ground-truth norm of a valid pixel.
        thresholds: angles (degrees) of the ``normal_a{t}`` percentages.
        bin_width: histogram bin of the median in degrees, or None for exact.
        collect_device: device to gather results across ranks on.
        prefix: prefix of the metric names (none by default: the names are already prefixed
            with ``normal_`` so that they do not collide with ``DepthMetric``'s ``rmse``).
    """

    default_prefix: Optional[str] = None

    def __init__(self,
                 valid_thr: float = 0.5,
                 thresholds: Sequence[float] = (5.0, 7.5, 11.25, 22.5, 30.0),
                 bin_width: Optional[float] = 0.01,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if bin_width is not None and bin_width <= 0:
            raise ValueError(f'bin_width={bin_width} must be > 0 (or None for an exact median)')
        self.valid_thr = float(valid_thr)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.bin_width = None if bin_width is None else float(bin_width)
        self.num_bins = None if bin_width is None else int(np.ceil(180.0 / self.bin_width))

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Store per image: pixel count, sum and sum of squares of the errors, the counts below
        each threshold, and the error histogram (or the errors themselves)."""
        for sample in data_samples:
            pred = _normal_map(sample, 'pred_normal_map')
            gt = _normal_map(sample, 'gt_normal_map')
            if pred.shape != gt.shape:
                raise ValueError(f'SurfaceNormalMetric: pred_normal_map {pred.shape} and '
                                 f'gt_normal_map {gt.shape} differ (predict at ori_shape)')
            err = angular_errors(pred, gt, self.valid_thr)
            result = dict(count=int(err.size), sum=float(err.sum()),
                          sum_sq=float(np.square(err).sum()),
                          below=np.array([(err < t).sum() for t in self.thresholds], np.int64))
            if self.bin_width is None:
                result['errors'] = err.astype(np.float32)
            else:
                idx = np.minimum((err / self.bin_width).astype(np.int64), self.num_bins - 1)
                result['hist'] = np.bincount(idx, minlength=self.num_bins).astype(np.int64)
            self.results.append(result)

    def _median(self, results: List[dict], count: int) -> float:
        if self.bin_width is None:
            return float(np.median(np.concatenate([r['errors'] for r in results])))
        hist = np.sum([r['hist'] for r in results], axis=0)
        cum = np.cumsum(hist)
        half = count / 2.0
        k = int(np.searchsorted(cum, half))  # first bin whose cumulative count reaches half
        before = cum[k - 1] if k > 0 else 0
        return float((k + (half - before) / hist[k]) * self.bin_width)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        count = sum(r['count'] for r in results)
        names = ['normal_mean', 'normal_median', 'normal_rmse'] + \
            [f'normal_a{t:g}' for t in self.thresholds]
        if count == 0:
            print_log('SurfaceNormalMetric saw no valid ground-truth normal: all metrics are NaN',
                      logger='current', level=logging.WARNING)
            return {name: float('nan') for name in names}
        below = np.sum([r['below'] for r in results], axis=0)
        values = [sum(r['sum'] for r in results) / count,
                  self._median(results, count),
                  float(np.sqrt(sum(r['sum_sq'] for r in results) / count))]
        values += (100.0 * below / count).tolist()
        return dict(zip(names, values))
