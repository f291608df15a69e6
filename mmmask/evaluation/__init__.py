"""Evaluation: metrics of the methods (registered in ``mmmask.registry.METRICS``)."""
from .metrics import PointAccuracy

__all__ = ['PointAccuracy']
from .metrics import ClassSubsetIoUMetric

__all__ += ['ClassSubsetIoUMetric']
from .knn import knn_accuracy, knn_classify, pool_features

__all__ += ['knn_accuracy', 'knn_classify', 'pool_features']
from .explanation import *  # noqa: F401,F403,E402
