"""Segmentors: ViT-P two-stage fusion (wrapping upstream models) and PolyMaX multi-task."""
from .polymax import PolyMaX
from .vitp import (ViTPPanopticSegmentor, ViTPSegmentor, mask_argmax_points, vitp_fuse)

__all__ = ['ViTPSegmentor', 'ViTPPanopticSegmentor', 'vitp_fuse', 'mask_argmax_points', 'PolyMaX']
from .uda import DACS, UDAOptimWrapperConstructor, UDASegDataPreProcessor

__all__ += ['DACS', 'UDASegDataPreProcessor', 'UDAOptimWrapperConstructor']
