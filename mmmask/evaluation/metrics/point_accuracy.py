"""Point classification accuracy of ViT-P (each point is classified into its segment's class)."""
import logging
from collections import defaultdict
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ...registry import METRICS


def _field(sample: Any, key: str) -> np.ndarray:
    """``sample[key]`` of a dict or data element as a flat int64 array."""
    value = sample.get(key, None) if hasattr(sample, 'get') else getattr(sample, key, None)
    if value is None:
        raise KeyError(f'data sample has no {key!r}: PointAccuracy needs the predicted '
                       "'pred_point_labels' and ground-truth 'gt_point_labels' of every point")
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value).reshape(-1).astype(np.int64)


@METRICS.register_module()
class PointAccuracy(BaseMetric):
    """Accuracy of point labels: ``accuracy`` over all points and ``mAcc`` over classes (in %).

    ``process`` reads ``pred_point_labels`` (P,) and ``gt_point_labels`` (P,) from each data sample
    (a dict or a data element). Points whose ground truth is ``ignore_index`` are skipped.
    ``accuracy`` is the percentage of the other points predicted right; ``mAcc`` is the mean, over
    the classes present in the ground truth, of each class's accuracy. With no valid point both
    are NaN.

    Args:
        ignore_index: ground-truth label of points that do not count.
        num_classes: if given, ground-truth labels (other than ``ignore_index``) must be below it.
        collect_device: device to gather results across ranks on (``'cpu'`` or ``'gpu'``).
        prefix: prefix of the metric names (``default_prefix='point'`` when None).
    """

    default_prefix: Optional[str] = 'point'

    def __init__(self,
                 ignore_index: int = 255,
                 num_classes: Optional[int] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if num_classes is not None and num_classes < 1:
            raise ValueError(f'num_classes={num_classes} must be >= 1 (or None)')
        self.ignore_index = ignore_index
        self.num_classes = num_classes

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Store, per sample, the classes in its ground truth with their point and hit counts."""
        for sample in data_samples:
            pred = _field(sample, 'pred_point_labels')
            gt = _field(sample, 'gt_point_labels')
            if pred.shape != gt.shape:
                raise ValueError(f'pred_point_labels has {pred.size} points but gt_point_labels '
                                 f'{gt.size}')
            valid = gt != self.ignore_index
            pred, gt = pred[valid], gt[valid]
            if self.num_classes is not None and gt.size and (gt.min() < 0
                                                             or gt.max() >= self.num_classes):
                raise ValueError(f'gt_point_labels hold {gt.min()}..{gt.max()}, outside '
                                 f'[0, num_classes={self.num_classes}) and not ignore_index='
                                 f'{self.ignore_index}')
            classes, inverse = np.unique(gt, return_inverse=True)
            totals = np.bincount(inverse, minlength=classes.size)
            hits = np.bincount(inverse, weights=(pred == gt), minlength=classes.size)
            self.results.append((classes, totals, hits.astype(np.int64)))

    def compute_metrics(self, results: List[Tuple[np.ndarray, np.ndarray,
                                                  np.ndarray]]) -> Dict[str, float]:
        """``accuracy`` and ``mAcc`` (percentages) from the gathered per-sample counts."""
        totals: Dict[int, int] = defaultdict(int)
        hits: Dict[int, int] = defaultdict(int)
        for classes, class_totals, class_hits in results:
            for cls, n, k in zip(classes.tolist(), class_totals.tolist(), class_hits.tolist()):
                totals[cls] += n
                hits[cls] += k
        num_points = sum(totals.values())
        if num_points == 0:
            print_log('PointAccuracy saw no point with a label other than ignore_index='
                      f'{self.ignore_index}: accuracy and mAcc are NaN', logger='current',
                      level=logging.WARNING)
            return dict(accuracy=float('nan'), mAcc=float('nan'))
        accuracy = 100.0 * sum(hits.values()) / num_points
        macc = 100.0 * float(np.mean([hits[c] / totals[c] for c in totals]))
        return dict(accuracy=accuracy, mAcc=macc)
