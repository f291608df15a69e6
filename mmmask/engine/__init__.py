"""Training-loop components: optimizer wrappers, hooks, loops."""
from .optim_wrappers import CPUAmpOptimWrapper

__all__ = ['CPUAmpOptimWrapper']
