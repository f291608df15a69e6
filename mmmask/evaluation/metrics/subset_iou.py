"""IoU metric that also reports mean IoUs over named class subsets (e.g. SYNTHIA -> Cityscapes'
mIoU16 and mIoU13 next to the 19-class mIoU)."""
from typing import Dict, Sequence

import numpy as np
from mmseg.evaluation.metrics import IoUMetric

from ...registry import METRICS


@METRICS.register_module()
class ClassSubsetIoUMetric(IoUMetric):
    """:class:`mmseg.evaluation.IoUMetric` plus ``<name>``: the mean IoU (in %) over the classes of
    each entry of ``class_subsets`` (``{name: [class names]}``), computed from the same
    dataset-wide intersections and unions; classes with an empty union are skipped (nan-mean).

    Example (SYNTHIA -> Cityscapes)::

        val_evaluator = dict(type='mmmask.ClassSubsetIoUMetric', iou_metrics=['mIoU'],
                             class_subsets=dict(mIoU16=[...16 names...], mIoU13=[...]))
    """

    def __init__(self, class_subsets: Dict[str, Sequence[str]] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.class_subsets = {k: list(v) for k, v in (class_subsets or {}).items()}

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        if self.format_only or not self.class_subsets:
            return metrics
        intersect, union = (sum(r[i] for r in results) for i in (0, 1))
        intersect = np.asarray(intersect.cpu() if hasattr(intersect, 'cpu') else intersect,
                               dtype=np.float64)
        union = np.asarray(union.cpu() if hasattr(union, 'cpu') else union, dtype=np.float64)
        with np.errstate(invalid='ignore', divide='ignore'):
            iou = intersect / union
        classes = list(self.dataset_meta['classes'])
        for name, subset in self.class_subsets.items():
            missing = [c for c in subset if c not in classes]
            if missing:
                raise KeyError(f'class_subsets[{name!r}]: unknown classes {missing}')
            idx = [classes.index(c) for c in subset]
            vals = iou[idx]
            metrics[name] = float(np.round(np.nanmean(vals) * 100, 2)) \
                if np.isfinite(vals).any() else float('nan')
        return metrics
