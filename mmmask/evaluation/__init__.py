"""Evaluation: metrics of the methods (registered in ``mmmask.registry.METRICS``)."""
from .metrics import PointAccuracy

__all__ = ['PointAccuracy']
from .metrics import ClassSubsetIoUMetric

__all__ += ['ClassSubsetIoUMetric']
from .knn import knn_accuracy, knn_classify, pool_features

__all__ += ['knn_accuracy', 'knn_classify', 'pool_features']
# ``explanation`` (T-TAME metrics, layer-masking classifier/transform) needs mmmask.models, and so
# mmcv's compiled ops: it is imported by ``register_all_modules`` / ``custom_imports``
# (``mmmask.evaluation.explanation``), not here, so that ``import mmmask`` works without the ops
# (and points to the installer when they are missing).
