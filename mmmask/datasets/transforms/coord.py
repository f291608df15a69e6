"""Crop and flip transforms that record where each view lies in the source image (PixPro, Xie et
al., CVPR 2021: official ``contrast/data/transform_coord.py``).

``results['coord']`` is a float32 array (x_ul, y_ul, x_lr, y_lr) in [0, 1] of the source image:
the crop's first and last pixel, normalised by (W − 1, H − 1). A flip swaps the two x (or y)
values, so a flipped view has x_ul > x_lr and PixPro's pixel centres run right to left.
Per-view coordinates travel through ``mmmask.MultiViewWithKeys(..., keys=['coord'])`` and
``PackInputs(algorithm_keys=['coord'])``.
"""
from typing import Dict

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmpretrain.datasets.transforms import RandomResizedCrop

from mmmask.registry import TRANSFORMS

__all__ = ['crop_coord', 'RandomResizedCropWithCoord', 'RandomFlipWithCoord']


def crop_coord(top: int, left: int, h: int, w: int, height: int, width: int) -> np.ndarray:
    """Official ``RandomResizedCropCoord`` box: ``(j/(W−1), i/(H−1), (j+w−1)/(W−1),
    (i+h−1)/(H−1))`` for a crop at (i=top, j=left) of size (h, w) in an ``H×W`` image."""
    if height < 2 or width < 2:
        raise ValueError(f'crop_coord needs a source image of at least 2x2 pixels, got '
                         f'{height}x{width}')
    return np.array([left / (width - 1), top / (height - 1), (left + w - 1) / (width - 1),
                     (top + h - 1) / (height - 1)], dtype=np.float32)


@TRANSFORMS.register_module()
class RandomResizedCropWithCoord(RandomResizedCrop):
    """mmpretrain ``RandomResizedCrop`` (same sampling as torchvision's, used by the official
    code) that also writes the crop box to ``results['coord']`` (see :func:`crop_coord`).

    Args: those of mmpretrain ``RandomResizedCrop`` (``scale``, ``crop_ratio_range``,
    ``aspect_ratio_range``, ``max_attempts``, ``interpolation``, ``backend``).
    """

    def transform(self, results: Dict) -> Dict:
        img = results['img']
        height, width = img.shape[:2]
        top, left, h, w = self.rand_crop_params(img)
        return self.apply_crop(results, top, left, h, w, height, width)

    def apply_crop(self, results: Dict, top: int, left: int, h: int, w: int, height: int,
                   width: int) -> Dict:
        """Crop ``results['img']`` at the given box, resize to ``scale`` and set ``coord``."""
        img = mmcv.imcrop(results['img'],
                          bboxes=np.array([left, top, left + w - 1, top + h - 1]))
        img = mmcv.imresize(img, tuple(self.scale[::-1]), interpolation=self.interpolation,
                            backend=self.backend)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['coord'] = crop_coord(top, left, h, w, height, width)
        return results


@TRANSFORMS.register_module()
class RandomFlipWithCoord(BaseTransform):
    """Flip ``img`` with probability ``prob`` and swap the matching pair of ``coord`` entries
    (official ``RandomHorizontalFlipCoord`` / ``RandomVerticalFlipCoord``).

    Args:
        prob: flip probability (0.5 in the paper's BYOL augmentation).
        direction: ``horizontal`` (swap x_ul, x_lr) or ``vertical`` (swap y_ul, y_lr).
    """

    def __init__(self, prob: float = 0.5, direction: str = 'horizontal') -> None:
        if not 0. <= prob <= 1.:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if direction not in ('horizontal', 'vertical'):
            raise ValueError(f"direction must be 'horizontal' or 'vertical', got {direction!r}")
        self.prob, self.direction = prob, direction

    @cache_randomness
    def _do_flip(self) -> bool:
        return np.random.rand() < self.prob

    def transform(self, results: Dict) -> Dict:
        if 'coord' not in results:
            raise KeyError('RandomFlipWithCoord needs results["coord"]: put '
                           "dict(type='mmmask.RandomResizedCropWithCoord', ...) before it")
        if self._do_flip():
            results['img'] = mmcv.imflip(results['img'], direction=self.direction)
            coord = np.array(results['coord'], dtype=np.float32, copy=True)
            a, b = (0, 2) if self.direction == 'horizontal' else (1, 3)
            coord[a], coord[b] = results['coord'][b], results['coord'][a]
            results['coord'] = coord
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob}, direction={self.direction!r})'
