"""Random right-angle rotations: the rotation-invariance augmentation of the Brain-Score 2022
dual-stream CrossViT recipe (github.com/williamberrios/BrainScore-Transformers, ``src/dataset.py``:
``RandomApply([RandomRotation((90, 90))], p=0.5)`` then ``RandomApply([RandomRotation((180,
180))], p=0.5)``, i.e. a uniform angle in {0°, 90°, 180°, 270°} counter-clockwise)."""
from typing import Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS

__all__ = ['RandomRot90', 'rot90_keep_size']


def rot90_keep_size(img: np.ndarray, fill: float = 0) -> np.ndarray:
    """A 90° counter-clockwise rotation about the centre on the *same* ``H × W`` canvas.

    What torchvision's ``RandomRotation((90, 90))`` (PIL ``Image.rotate(90)``, ``expand=False``)
    does to a non-square image: the rotated ``W × H`` picture is centred, cropped where it sticks
    out and padded with ``fill`` elsewhere. For odd ``H − W`` PIL's nearest sampling puts it
    ``ceil((H−W)/2)`` rows down and ``floor((W−H)/2)`` columns right, reproduced here.
    Square images give exactly ``np.rot90``.
    """
    h, w = img.shape[:2]
    rotated = np.rot90(img, 1)
    if h == w:
        return np.ascontiguousarray(rotated)
    top, left = -((w - h) // 2), (w - h) // 2
    out = np.full_like(img, fill)
    y0, y1 = max(0, top), min(h, top + w)
    x0, x1 = max(0, left), min(w, left + h)
    out[y0:y1, x0:x1] = rotated[y0 - top:y1 - top, x0 - left:x1 - left]
    return out


@TRANSFORMS.register_module()
class RandomRot90(BaseTransform):
    """Rotate by 90° with probability ``prob_90``, then by 180° with probability ``prob_180``.

    With the default 0.5 / 0.5 the angle is uniform over {0, 90, 180, 270}° (counter-clockwise),
    as in the Brain-Score recipe. The rotation is exact (``np.rot90``).

    Args:
        prob_90: probability of the 90° step.
        prob_180: probability of the 180° step.
        keep_size: False (default): the image is rotated as a whole, a non-square ``H × W``
            becomes ``W × H``. True: the 90° step keeps the ``H × W`` canvas like the official
            torchvision ``RandomRotation`` (``expand=False``), cropping and zero-padding
            non-square images (see :func:`rot90_keep_size`).
        fill: padding value of ``keep_size=True``.
        keys: result keys rotated together (same angle), e.g. ``('img', 'gt_seg_map')``.

    Adds ``rot90_k`` (the number of quarter turns, 0-3) to the results.
    """

    def __init__(self, prob_90: float = 0.5, prob_180: float = 0.5, keep_size: bool = False,
                 fill: float = 0, keys: Sequence[str] = ('img', )) -> None:
        for name, p in (('prob_90', prob_90), ('prob_180', prob_180)):
            if not 0 <= p <= 1:
                raise ValueError(f'RandomRot90 {name}={p} is not a probability in [0, 1]')
        self.prob_90, self.prob_180 = prob_90, prob_180
        self.keep_size, self.fill, self.keys = keep_size, fill, tuple(keys)

    def _rotate(self, img: np.ndarray, quarter: bool, half: bool) -> np.ndarray:
        if quarter:
            img = rot90_keep_size(img, self.fill) if self.keep_size else np.rot90(img, 1)
        if half:
            img = np.rot90(img, 2)
        return np.ascontiguousarray(img)

    def transform(self, results: dict) -> dict:
        quarter = bool(np.random.rand() < self.prob_90)
        half = bool(np.random.rand() < self.prob_180)
        for key in self.keys:
            if results.get(key) is not None:
                results[key] = self._rotate(results[key], quarter, half)
        if 'img' in self.keys and results.get('img') is not None:
            results['img_shape'] = results['img'].shape[:2]
        results['rot90_k'] = int(quarter) + 2 * int(half)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob_90={self.prob_90}, prob_180={self.prob_180}, '
                f'keep_size={self.keep_size}, keys={self.keys})')
