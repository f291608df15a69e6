"""Runner hooks."""
from .knn_hook import KNNEvalHook

__all__ = ['KNNEvalHook']
