"""Metrics of the methods."""
from .point_accuracy import PointAccuracy

__all__ = ['PointAccuracy']
from .normal_metric import SurfaceNormalMetric

__all__ += ['SurfaceNormalMetric']
from .subset_iou import ClassSubsetIoUMetric

__all__ += ['ClassSubsetIoUMetric']
