"""Necks shared across methods."""
from .flatten_neck import FlattenNeck

__all__ = ['FlattenNeck']
