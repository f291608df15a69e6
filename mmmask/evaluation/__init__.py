"""Evaluation: metrics of the methods (registered in ``mmmask.registry.METRICS``)."""
from .metrics import PointAccuracy

__all__ = ['PointAccuracy']
