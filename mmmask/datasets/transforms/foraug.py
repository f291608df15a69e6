"""ForAug online recombination (Nauen et al., "ForAug: Recombining Foregrounds and Backgrounds to
Improve Vision Transformer Training with Bias Mitigation", arXiv 2503.09399).

Re-implementation of ``ForNet.recombine`` and ``ForNet.load_original_image`` of the official code
(tobna/ForAug, ``fornet.py``): a segmented foreground (RGBA, cropped to its mask) is scaled to a
target area ratio drawn around the foreground ratios of its own source image and of the background's
source image, placed at a Bates-distributed position and pasted with a blurred, sharpened alpha
edge. All draws use a NumPy ``RandomState`` (by default NumPy's global one, as the official code),
in the official order, so the same seed gives the same composite.
"""
import math
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from PIL import Image, ImageFilter

from mmmask.registry import TRANSFORMS

__all__ = [
    'RecombineResult', 'recombine', 'bates_position', 'sample_fg_area_ratio', 'sharpen_alpha',
    'orig_image_probability', 'use_original_image', 'ForegroundBackgroundRecombine',
    'LoadForegroundFromFile', 'FG_SIZE_MODES', 'ORIG_IMG_SCHEDULES'
]

FG_SIZE_MODES = ('range', 'max', 'min', 'mean')
ORIG_IMG_SCHEDULES = ('linear', 'revlinear', 'cos')
RandomLike = Union[np.random.RandomState, 'np.random.mtrand']


class RecombineResult(dict):
    """``image`` (PIL RGB), ``mask`` (float32 HxW in [0, 1] or None), ``offset`` (x, y),
    ``fg_size`` (w, h after resize/crop), ``fg_scale`` (target area / bg area / fill) and
    ``sigma`` (edge-blur radius, or None)."""

    def __getattr__(self, item):
        try:
            return self[item]
        except KeyError as err:
            raise AttributeError(item) from err


def sample_fg_area_ratio(fg_ratio: float, bg_ratio: float, jitter: float, mode: str = 'range',
                         rng: RandomLike = np.random) -> float:
    """Target (object pixels / image pixels) ratio: ``U[lo(1-j), hi(1+j)]`` where ``lo, hi`` are
    ``min/max`` of the two source ratios (``'range'``), or both the max / min / mean of them."""
    if mode == 'max':
        lo = hi = max(fg_ratio, bg_ratio)
    elif mode == 'min':
        lo = hi = min(fg_ratio, bg_ratio)
    elif mode == 'mean':
        lo = hi = (fg_ratio + bg_ratio) / 2
    elif mode == 'range':
        lo, hi = min(fg_ratio, bg_ratio), max(fg_ratio, bg_ratio)
    else:
        raise ValueError(f'fg_size_mode={mode!r}: use one of {FG_SIZE_MODES}')
    return float(rng.uniform(lo * (1 - jitter), hi * (1 + jitter)))


def bates_position(n: int, rng: RandomLike = np.random) -> Tuple[float, float]:
    """Relative (x, y) position in [0, 1]: each the mean of ``|n|`` uniforms (Bates(|n|); n = 1 is
    uniform, larger n concentrates on the centre); ``n = 0`` is the centre ``(0.5, 0.5)``; ``n < 0``
    wraps Bates(|n|) by ``z + 0.5 - floor(z + 0.5)``, moving the mass to the edges."""
    if n == 0:
        return 0.5, 0.5
    z1 = float(rng.uniform(0, 1, abs(n)).mean())
    z2 = float(rng.uniform(0, 1, abs(n)).mean())
    if n < 0:
        z1 = z1 + 0.5 - math.floor(z1 + 0.5)
        z2 = z2 + 0.5 - math.floor(z2 + 0.5)
    return z1, z2


def sharpen_alpha(p: int) -> int:
    """The official point map applied after the edge blur: ``2p - 255`` above 128, else 0 (the
    blurred edge keeps its inner half, re-stretched to [1, 255])."""
    return 2 * p - 255 if p > 128 else 0


def _center_crop_box(size: Tuple[int, int], goal: Tuple[int, int]) -> Tuple[int, int]:
    """torchvision ``CenterCrop`` offsets (left, top) of a ``goal`` (w, h) crop of ``size``."""
    return int(round((size[0] - goal[0]) / 2.0)), int(round((size[1] - goal[1]) / 2.0))


def recombine(fg: Image.Image, bg: Image.Image, fg_ratio: float, bg_ratio: float, *,
              fg_scale_jitter: float = 0.3, fg_size_mode: str = 'range', fg_bates_n: int = 1,
              mask_smoothing_sigma: float = 4.0, rel_jut_out: float = 0.0,
              fg_in_nonant: Optional[int] = None, size_fact: float = 1.0, train: bool = True,
              return_mask: bool = True, fg_transform: Optional[Callable] = None,
              rng: RandomLike = np.random) -> RecombineResult:
    """Paste foreground ``fg`` (RGBA, cropped to its object) onto background ``bg`` (RGB).

    ``fg_ratio``/``bg_ratio``: object area / image area of the images the foreground and the
    background were cut from (``fg_bg_ratios`` json). The area ratio sampled by
    :func:`sample_fg_area_ratio` is divided by the foreground's alpha fill (how much of its box is
    object) and multiplied by ``size_fact``; the foreground is resized keeping its aspect ratio to
    that share of the background area (of one nonant if ``fg_in_nonant`` is set), cropped (random
    when ``train``, centred otherwise) if larger than the background, placed by
    :func:`bates_position` inside ``[-j w, W - (1-j) w]`` (``j = rel_jut_out``) or inside nonant
    ``fg_in_nonant`` (0..8, row-major 3x3 grid; -1 only shrinks), and pasted with its alpha
    Gaussian-blurred by ``U(0.1, 1)·mask_smoothing_sigma`` and sharpened by :func:`sharpen_alpha`.
    Returns the composite and the pasted alpha as a [0, 1] mask of the output.

    Deviations from the official code: a target side that rounds to 0 becomes 1 pixel and an
    empty alpha counts as fill 1 (the official divides by zero / fails in PIL); the random crop
    draws from ``rng`` instead of torch's RNG.
    """
    if fg_size_mode not in FG_SIZE_MODES:
        raise ValueError(f'fg_size_mode={fg_size_mode!r}: use one of {FG_SIZE_MODES}')
    if fg_in_nonant is not None and not -1 <= fg_in_nonant < 9:
        raise ValueError(f'fg_in_nonant={fg_in_nonant} must be None or in [-1, 8]')
    fg = fg.convert('RGBA') if fg.mode != 'RGBA' else fg
    bg = bg.convert('RGB') if bg.mode != 'RGB' else bg.copy()
    if fg_transform is not None:
        fg = fg_transform(fg)
    bg_w, bg_h = bg.size

    fill = float(np.asarray(fg.split()[-1], dtype=np.float32).mean() / 255.0)
    if fill <= 0:
        fill = 1.0
    bg_area = bg_w * bg_h
    if fg_in_nonant is not None:
        bg_area = bg_area / 9
    fg_scale = sample_fg_area_ratio(fg_ratio, bg_ratio, fg_scale_jitter, fg_size_mode,
                                    rng) / fill * size_fact
    fw, fh = fg.size
    goal_h = max(1, round(math.sqrt(bg_area * fg_scale * fh / fw)))
    goal_w = max(1, round(math.sqrt(bg_area * fg_scale * fw / fh)))
    fg = fg.resize((goal_w, goal_h))

    if goal_w > bg_w or goal_h > bg_h:
        cw, ch = min(goal_w, bg_w), min(goal_h, bg_h)
        if train:
            left = int(rng.randint(0, goal_w - cw + 1))
            top = int(rng.randint(0, goal_h - ch + 1))
        else:
            left, top = _center_crop_box((goal_w, goal_h), (cw, ch))
        fg = fg.crop((left, top, left + cw, top + ch))
    fw, fh = fg.size

    z1, z2 = bates_position(fg_bates_n, rng)
    x_min, x_max = -rel_jut_out * fw, bg_w - fw * (1 - rel_jut_out)
    y_min, y_max = -rel_jut_out * fh, bg_h - fh * (1 - rel_jut_out)
    if fg_in_nonant is not None and fg_in_nonant >= 0:
        col, row = fg_in_nonant % 3, fg_in_nonant // 3
        x_min, x_max = col * bg_w / 3, (col + 1) * bg_w / 3 - fw
        y_min, y_max = row * bg_h / 3, (row + 1) * bg_h / 3 - fh
    if x_min > x_max:
        x_min = x_max = (x_min + x_max) / 2
    if y_min > y_max:
        y_min = y_max = (y_min + y_max) / 2
    offs_x = round(z1 * (x_max - x_min) + x_min)
    offs_y = round(z2 * (y_max - y_min) + y_min)

    alpha = fg.split()[-1]
    sigma = None
    if mask_smoothing_sigma > 0.0:
        sigma = float((rng.rand() * 0.9 + 0.1) * mask_smoothing_sigma)
        alpha = alpha.filter(ImageFilter.GaussianBlur(radius=sigma)).point(sharpen_alpha)
    bg.paste(fg.convert('RGB'), (offs_x, offs_y), alpha)
    mask = None
    if return_mask:
        canvas = Image.new('L', (bg_w, bg_h), 0)
        canvas.paste(alpha, (offs_x, offs_y))
        mask = np.asarray(canvas, dtype=np.float32) / 255.0
    return RecombineResult(image=bg, mask=mask, offset=(offs_x, offs_y), fg_size=(fw, fh),
                           fg_scale=fg_scale, sigma=sigma, position=(z1, z2))


def orig_image_probability(schedule: Union[float, str], epoch: int, epochs: int) -> float:
    """Probability of showing the original image instead of a recombination at ``epoch`` (0-based)
    of ``epochs``: a constant float, ``'linear'`` = e/E, ``'cos'`` = 1 - cos(pi e / 2E), and
    ``'revlinear'`` = (e - E)/E, which is negative on [0, E): as in the official code it never
    selects the original image (kept for fidelity; use a float or 'linear' to mix originals)."""
    if isinstance(schedule, str):
        if schedule not in ORIG_IMG_SCHEDULES:
            raise ValueError(f'orig_img_prob={schedule!r}: use a float or one of '
                             f'{ORIG_IMG_SCHEDULES}')
        if epochs <= 0:
            raise ValueError(f'orig_img_prob={schedule!r} needs epochs > 0 (the schedule length)')
        if schedule == 'linear':
            return epoch / epochs
        if schedule == 'revlinear':
            return (epoch - epochs) / epochs
        return 1.0 - math.cos(math.pi * epoch / (2 * epochs))
    return float(schedule)


def use_original_image(schedule: Union[float, str], epoch: int, epochs: int,
                       rng: RandomLike = np.random) -> bool:
    """One draw of the official ``load_original_image``: ``rand < p`` (``'cos'``: ``rand > cos``,
    the same event)."""
    if not isinstance(schedule, str) and float(schedule) <= 0.0:
        return False
    if schedule == 'cos':
        return bool(rng.rand() > math.cos(math.pi * epoch / (2 * epochs)))
    return bool(rng.rand() < orig_image_probability(schedule, epoch, epochs))


def _bgr_to_pil(img: np.ndarray) -> Image.Image:
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return Image.fromarray(np.ascontiguousarray(img[..., 2::-1]))


def _bgra_to_pil(img: np.ndarray) -> Image.Image:
    if img.ndim != 3 or img.shape[2] != 4:
        raise ValueError(f'foreground must be HxWx4 (BGR + alpha), got shape {img.shape}; load it '
                         'with mmmask.LoadForegroundFromFile (cv2 IMREAD_UNCHANGED) from a '
                         'PNG/WEBP with an alpha channel')
    rgba = img[..., [2, 1, 0, 3]]
    return Image.fromarray(np.ascontiguousarray(rgba), 'RGBA')


@TRANSFORMS.register_module()
class LoadForegroundFromFile(BaseTransform):
    """Load ``results['fg_path']`` (RGBA PNG/WEBP) into ``results['fg_img']`` (HxWx4 uint8, BGR +
    alpha, OpenCV order like ``LoadImageFromFile``). An image without alpha gets an opaque one."""

    def __init__(self, key: str = 'fg_path') -> None:
        self.key = key

    def transform(self, results: Dict) -> Dict:
        if results.get('use_original', False):
            return results
        path = results[self.key]
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if img is None:
            raise FileNotFoundError(f'LoadForegroundFromFile: cannot read {path}')
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGRA)
        elif img.shape[2] == 3:
            img = np.concatenate([img, np.full(img.shape[:2] + (1, ), 255, np.uint8)], -1)
        results['fg_img'] = img
        return results


@TRANSFORMS.register_module()
class ForegroundBackgroundRecombine(BaseTransform):
    """ForAug recombination as an mmcv transform (``type='mmmask.ForegroundBackgroundRecombine'``).

    Reads ``results['img']`` (background, HxWx3 BGR as from ``LoadImageFromFile``),
    ``results['fg_img']`` (HxWx4 BGR + alpha) and the ratios ``results['fg_ratio']`` /
    ``results['bg_ratio']`` (default ``default_ratio``); writes the composite to ``img`` (BGR uint8,
    ``img_shape``/``ori_shape`` updated), and with ``return_fg_mask`` the pasted alpha as
    ``gt_fg_mask`` (float32 HxW in [0, 1]) plus ``fg_offset``/``fg_size``. Samples marked
    ``use_original=True`` (an original image chosen by ``mmmask.ForNetDataset``'s ``orig_img_prob``)
    pass through unchanged. Arguments as :func:`recombine` (official defaults); ``seed`` gives the
    transform its own ``RandomState`` (else NumPy's global state, which mmengine seeds per worker).
    """

    def __init__(self, fg_scale_jitter: float = 0.3, fg_size_mode: str = 'range',
                 fg_bates_n: int = 1, mask_smoothing_sigma: float = 4.0,
                 rel_jut_out: float = 0.0, fg_in_nonant: Optional[int] = None,
                 size_fact: float = 1.0, train: bool = True, return_fg_mask: bool = False,
                 default_ratio: float = 0.3, seed: Optional[int] = None) -> None:
        if fg_size_mode not in FG_SIZE_MODES:
            raise ValueError(f'fg_size_mode={fg_size_mode!r}: use one of {FG_SIZE_MODES}')
        if fg_in_nonant is not None and not -1 <= fg_in_nonant < 9:
            raise ValueError(f'fg_in_nonant={fg_in_nonant} must be None or in [-1, 8]')
        self.kwargs = dict(fg_scale_jitter=fg_scale_jitter, fg_size_mode=fg_size_mode,
                           fg_bates_n=fg_bates_n, mask_smoothing_sigma=mask_smoothing_sigma,
                           rel_jut_out=rel_jut_out, fg_in_nonant=fg_in_nonant,
                           size_fact=size_fact, train=train)
        self.return_fg_mask = return_fg_mask
        self.default_ratio = default_ratio
        self.rng = np.random.RandomState(seed) if seed is not None else np.random

    def transform(self, results: Dict) -> Dict:
        if results.get('use_original', False):
            return results
        for key in ('img', 'fg_img'):
            if key not in results:
                raise KeyError(f'ForegroundBackgroundRecombine needs results[{key!r}]: put '
                               "LoadImageFromFile (background) and mmmask.LoadForegroundFromFile "
                               'before it (the dataset must give img_path and fg_path)')
        out = recombine(_bgra_to_pil(results['fg_img']), _bgr_to_pil(results['img']),
                        float(results.get('fg_ratio', self.default_ratio)),
                        float(results.get('bg_ratio', self.default_ratio)),
                        return_mask=self.return_fg_mask, rng=self.rng, **self.kwargs)
        img = np.asarray(out.image)[..., ::-1].copy()
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        results.pop('fg_img', None)
        if self.return_fg_mask:
            results['gt_fg_mask'] = out.mask
            results['fg_offset'] = out.offset
            results['fg_size'] = out.fg_size
        return results

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in self.kwargs.items())
        return f'{self.__class__.__name__}({args}, return_fg_mask={self.return_fg_mask})'


def nonant_of(offset: Sequence[int], size: Sequence[int], image_size: Sequence[int]) -> int:
    """Row-major 3x3 cell index of the centre of a box ``offset`` (x, y), ``size`` (w, h) in an
    image of ``image_size`` (W, H)."""
    cx = (offset[0] + size[0] / 2) / image_size[0]
    cy = (offset[1] + size[1] / 2) / image_size[1]
    return int(min(2, max(0, math.floor(cy * 3)))) * 3 + int(min(2, max(0, math.floor(cx * 3))))


__all__ += ['nonant_of']
