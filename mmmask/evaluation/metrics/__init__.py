"""Metrics of the methods."""
from .point_accuracy import PointAccuracy

__all__ = ['PointAccuracy']
