"""Data transforms of the methods (registered in ``mmmask.registry.TRANSFORMS``)."""
from .point_sampling import (CoarsenSegMap, PackPointInputs, SampleSegmentPoints,
                             SegRandomResizedCrop, SegRandomRotate)

__all__ = [
    'SegRandomResizedCrop', 'SegRandomRotate', 'CoarsenSegMap', 'SampleSegmentPoints',
    'PackPointInputs'
]
from .dense import LoadNormalAnnotation, PackDenseInputs, RandomFlipDense

__all__ += ['LoadNormalAnnotation', 'RandomFlipDense', 'PackDenseInputs']
from .multiview import MultiViewWithKeys  # noqa: E402

__all__ += ['MultiViewWithKeys']
from .coord import *  # noqa: F401,F403,E402
from .rotation import *  # noqa: F401,F403,E402
from .foraug import *  # noqa: F401,F403,E402
