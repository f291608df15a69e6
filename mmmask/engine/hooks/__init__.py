"""Runner hooks."""
from .knn_hook import KNNEvalHook

__all__ = ['KNNEvalHook']
from .mcl_hook import *  # noqa: F401,F403,E402
from .sparsifiner_hook import *  # noqa: F401,F403,E402
