"""Segmentors that wrap upstream models: ViT-P two-stage fusion."""
from .vitp import (ViTPPanopticSegmentor, ViTPSegmentor, mask_argmax_points, vitp_fuse)

__all__ = ['ViTPSegmentor', 'ViTPPanopticSegmentor', 'vitp_fuse', 'mask_argmax_points']
