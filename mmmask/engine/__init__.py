"""Training-loop components: optimizer wrappers, hooks, loops."""
from .optim_wrappers import CPUAmpOptimWrapper

__all__ = ['CPUAmpOptimWrapper']
from .hooks import KNNEvalHook

__all__ += ['KNNEvalHook']
