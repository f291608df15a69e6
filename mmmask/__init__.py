"""mmmask: masked modelling and vision transformers for mmpretrain, mmsegmentation and mmdetection."""
from .utils.compat import apply_patches
from .version import __version__

apply_patches()

__all__ = ['__version__']
