"""Patch-perturbation robustness (Gu, Tresp & Qin, "Are Vision Transformers Robust to Patch
Perturbations?", ECCV 2022, arXiv 2111.10659).

One patch of the input, aligned with the ViT patch grid (``patch_size`` squares from the top-left
corner, as the ViT patch embedding cuts the image), is perturbed and the classifier's prediction is
compared with its clean prediction:

* **natural**: an ImageNet-C-style corruption (Hendrycks & Dietterich, ICLR 2019) of the image,
  pasted back on that patch only (:func:`corrupt_image`, :data:`CORRUPTIONS`, the pipeline
  transform :class:`PatchCorruption`);
* **adversarial**: PGD restricted to that patch (:func:`patch_pgd`), in pixel space (0-255,
  the model's RGB order) through the mean/std of the model's data preprocessor, L∞ budget ``eps``
  (255 = unbounded within the valid pixel range);
* **random**: uniform noise of the same L∞ budget on the same patch (:func:`patch_random_noise`),
  the "is it just the size of the change" control.

:func:`evaluate_patch_robustness` sweeps the grid positions and returns the **fooling rate** (share
of the clean-correct images that are misclassified after the perturbation) per position and
overall, accuracy, loss increase and, for ViTs, the **share of attention on the perturbed patch**
(:class:`AttentionRecorder`: attention mass received by that patch token, averaged over queries,
heads and layers; the uniform share is ``1/N``). The attention-temperature defence itself is
``mmmask.AttentionTemperature`` / ``set_attention_temperature`` (``mmmask.models.layers``).

Corruption parameters are the ImageNet-C ones (severity 1-5), implemented here with numpy / cv2;
snow, frost, fog, glass blur and elastic transform are not provided (they need image assets or
ImageMagick in the reference implementation).
"""
import contextlib
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform
from torch import Tensor, nn

from mmmask.registry import TRANSFORMS

__all__ = ['CORRUPTIONS', 'corrupt_image', 'PatchCorruption', 'patch_grid', 'patch_box',
           'patch_mask', 'paste_patch', 'patch_pgd', 'patch_random_noise', 'AttentionRecorder',
           'attention_share', 'received_attention', 'classifier_fn', 'preprocessor_stats',
           'denormalize', 'normalize',
           'corrupt_inputs', 'fooling_rate', 'evaluate_patch_robustness']

Position = Union[Tuple[int, int], Tensor]


# ------------------------------------------------------------------ natural corruptions (numpy)
def _as_float(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) / 255.0


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def gaussian_noise(img, severity, rng):
    c = [.08, .12, .18, .26, .38][severity - 1]
    return _to_uint8(_as_float(img) + rng.normal(0, c, img.shape))


def shot_noise(img, severity, rng):
    c = [60, 25, 12, 5, 3][severity - 1]
    return _to_uint8(rng.poisson(_as_float(img) * c) / c)


def impulse_noise(img, severity, rng):
    amount = [.03, .06, .09, .17, .27][severity - 1]
    out = _as_float(img).copy()
    hit = rng.random(img.shape) < amount  # salt and pepper, per channel value
    out[hit] = (rng.random(int(hit.sum())) < 0.5).astype(np.float32)
    return _to_uint8(out)


def speckle_noise(img, severity, rng):
    c = [.15, .2, .35, .45, .6][severity - 1]
    x = _as_float(img)
    return _to_uint8(x + x * rng.normal(0, c, img.shape))


def gaussian_blur(img, severity, rng):
    sigma = [1, 2, 3, 4, 6][severity - 1]
    return _to_uint8(cv2.GaussianBlur(_as_float(img), (0, 0), sigma))


def _disk(radius: int, alias_sigma: float) -> np.ndarray:
    size = max(radius, 8) if radius <= 8 else radius
    ax = np.arange(-size, size + 1)
    xx, yy = np.meshgrid(ax, ax)
    kernel = ((xx**2 + yy**2) <= radius**2).astype(np.float32)
    kernel /= kernel.sum()
    return cv2.GaussianBlur(kernel, (3, 3), alias_sigma)


def defocus_blur(img, severity, rng):
    radius, alias = [(3, .1), (4, .5), (6, .5), (8, .5), (10, .5)][severity - 1]
    return _to_uint8(cv2.filter2D(_as_float(img), -1, _disk(radius, alias),
                                  borderType=cv2.BORDER_REFLECT))


def motion_blur(img, severity, rng):
    radius, sigma = [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)][severity - 1]
    angle = rng.uniform(-45, 45)
    # one-sided line kernel with Gaussian weights along it (the streak ImageMagick draws)
    size = 2 * radius + 1
    kernel = np.zeros((size, size), np.float32)
    t = np.arange(radius + 1)
    weights = np.exp(-t**2 / (2 * sigma**2))
    x = np.round(radius + t * np.cos(np.deg2rad(angle))).astype(int)
    y = np.round(radius - t * np.sin(np.deg2rad(angle))).astype(int)
    np.add.at(kernel, (y, x), weights)
    kernel /= kernel.sum()
    return _to_uint8(cv2.filter2D(_as_float(img), -1, kernel, borderType=cv2.BORDER_REFLECT))


def zoom_blur(img, severity, rng):
    zooms = [np.arange(1, 1.11, .01), np.arange(1, 1.16, .01), np.arange(1, 1.21, .02),
             np.arange(1, 1.26, .02), np.arange(1, 1.31, .03)][severity - 1]
    x = _as_float(img)
    h, w = x.shape[:2]
    out = x.copy()
    for z in zooms:
        zh, zw = int(np.ceil(h * z)), int(np.ceil(w * z))
        big = cv2.resize(x, (zw, zh), interpolation=cv2.INTER_LINEAR)
        top, left = (zh - h) // 2, (zw - w) // 2
        out += big[top:top + h, left:left + w]
    return _to_uint8(out / (len(zooms) + 1))


def brightness(img, severity, rng):
    c = [.1, .2, .3, .4, .5][severity - 1]
    hsv = cv2.cvtColor(_as_float(img), cv2.COLOR_RGB2HSV)
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return _to_uint8(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB))


def contrast(img, severity, rng):
    c = [.4, .3, .2, .1, .05][severity - 1]
    x = _as_float(img)
    mean = x.mean(axis=(0, 1), keepdims=True).mean()
    return _to_uint8((x - mean) * c + mean)


def saturate(img, severity, rng):
    scale, shift = [(.3, 0), (.1, 0), (2, 0), (5, .1), (20, .2)][severity - 1]
    hsv = cv2.cvtColor(_as_float(img), cv2.COLOR_RGB2HSV)
    hsv[..., 1] = np.clip(hsv[..., 1] * scale + shift, 0, 1)
    return _to_uint8(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB))


def jpeg_compression(img, severity, rng):
    quality = [25, 18, 15, 10, 7][severity - 1]
    ok, buf = cv2.imencode('.jpg', img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


def pixelate(img, severity, rng):
    c = [.6, .5, .4, .3, .25][severity - 1]
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, int(w * c)), max(1, int(h * c))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


#: ImageNet-C corruption functions ``f(rgb_uint8 (H, W, 3), severity 1-5, numpy Generator)``.
CORRUPTIONS: Dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = dict(
    gaussian_noise=gaussian_noise, shot_noise=shot_noise, impulse_noise=impulse_noise,
    speckle_noise=speckle_noise, gaussian_blur=gaussian_blur, defocus_blur=defocus_blur,
    motion_blur=motion_blur, zoom_blur=zoom_blur, brightness=brightness, contrast=contrast,
    saturate=saturate, jpeg_compression=jpeg_compression, pixelate=pixelate)


def corrupt_image(img: np.ndarray, corruption: str, severity: int = 5,
                  rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """The whole ``img`` (RGB uint8, H×W×3) corrupted with an ImageNet-C corruption."""
    if corruption not in CORRUPTIONS:
        raise KeyError(f'unknown corruption {corruption!r}; choose from {sorted(CORRUPTIONS)}')
    if not 1 <= int(severity) <= 5:
        raise ValueError(f'severity must be in 1..5, got {severity}')
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'corrupt_image needs an H x W x 3 uint8 image, got {img.dtype} '
                         f'{img.shape}')
    rng = np.random.default_rng() if rng is None else rng
    out = CORRUPTIONS[corruption](img, int(severity), rng)
    assert out.shape == img.shape and out.dtype == np.uint8
    return out


# ------------------------------------------------------------------------------ patch geometry
def patch_grid(h: int, w: int, patch_size: int) -> Tuple[int, int]:
    """Rows and columns of the ``patch_size`` grid of an ``h × w`` image (the ViT token grid)."""
    if h < patch_size or w < patch_size:
        raise ValueError(f'image {h}x{w} is smaller than one {patch_size}x{patch_size} patch')
    return h // patch_size, w // patch_size


def patch_box(position: Tuple[int, int], patch_size: int) -> Tuple[int, int, int, int]:
    """``(top, left, bottom, right)`` pixel box of grid cell ``(row, col)``."""
    r, c = int(position[0]), int(position[1])
    return r * patch_size, c * patch_size, (r + 1) * patch_size, (c + 1) * patch_size


def _positions(position: Position, n: int) -> Tensor:
    pos = torch.as_tensor(position, dtype=torch.long)
    if pos.ndim == 1:
        pos = pos.view(1, 2).expand(n, 2)
    if pos.shape != (n, 2):
        raise ValueError(f'position must be (row, col) or an ({n}, 2) tensor, '
                         f'got {tuple(pos.shape)}')
    return pos


def patch_mask(shape: Sequence[int], position: Position, patch_size: int,
               device=None) -> Tensor:
    """``(N, 1, H, W)`` float mask, 1 on the grid patch at ``position`` of each image (one
    ``(row, col)`` for all, or an ``(N, 2)`` tensor of per-image cells)."""
    n, _, h, w = shape
    gh, gw = patch_grid(h, w, patch_size)
    pos = _positions(position, n)
    if (pos[:, 0] < 0).any() or (pos[:, 0] >= gh).any() or (pos[:, 1] < 0).any() or \
            (pos[:, 1] >= gw).any():
        raise ValueError(f'patch position outside the {gh}x{gw} grid: {pos.tolist()}')
    mask = torch.zeros(n, 1, h, w, device=device)
    for i, (r, c) in enumerate(pos.tolist()):
        t, l, b, rr = patch_box((r, c), patch_size)
        mask[i, :, t:b, l:rr] = 1
    return mask


def paste_patch(clean: Tensor, perturbed: Tensor, position: Position,
                patch_size: int) -> Tensor:
    """``clean`` with the grid patch at ``position`` taken from ``perturbed``."""
    mask = patch_mask(clean.shape, position, patch_size, clean.device).to(clean.dtype)
    return clean * (1 - mask) + perturbed * mask


@TRANSFORMS.register_module()
class PatchCorruption(BaseTransform):
    """Corrupt one grid-aligned ``patch_size`` square of ``results['img']`` (BGR uint8, after
    resizing / cropping to the model's input size) with an ImageNet-C corruption.

    The corruption is computed on the whole image and pasted on the patch only (blurs see the
    neighbourhood, as a corrupted region of a real photo would).

    Args:
        corruption: a key of :data:`CORRUPTIONS`.
        severity: 1-5 (the paper's patch corruptions use the ImageNet-C levels).
        patch_size: the ViT patch size (16 for DeiT / ViT-B/16).
        position: ``'random'`` (one cell per image, deterministic per image with ``seed``), a
            flat cell index (row-major) or ``(row, col)``.
        seed: seed of the random position and of the corruption noise (``None``: unseeded).

    Adds ``results['patch_corruption'] = dict(corruption, severity, position=(row, col),
    patch_size)``.
    """

    def __init__(self, corruption: str = 'gaussian_noise', severity: int = 5,
                 patch_size: int = 16, position: Union[str, int, Sequence[int]] = 'random',
                 seed: Optional[int] = 0) -> None:
        if corruption not in CORRUPTIONS:
            raise KeyError(f'unknown corruption {corruption!r}; choose from {sorted(CORRUPTIONS)}')
        if not 1 <= int(severity) <= 5:
            raise ValueError(f'severity must be in 1..5, got {severity}')
        if isinstance(position, str) and position != 'random':
            raise ValueError(f"position must be 'random', an int or (row, col), got {position!r}")
        self.corruption, self.severity, self.patch_size = corruption, int(severity), patch_size
        self.position, self.seed = position, seed

    def _rng(self, results: dict) -> np.random.Generator:
        if self.seed is None:
            return np.random.default_rng()
        key = str(results.get('img_path', results.get('sample_idx', '')))
        digest = sum(ord(ch) * (i + 1) for i, ch in enumerate(key))
        return np.random.default_rng([self.seed, digest])

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        gh, gw = patch_grid(h, w, self.patch_size)
        rng = self._rng(results)
        if self.position == 'random':
            cell = int(rng.integers(gh * gw))
            pos = (cell // gw, cell % gw)
        elif isinstance(self.position, int):
            pos = (self.position // gw, self.position % gw)
        else:
            pos = (int(self.position[0]), int(self.position[1]))
        if not (0 <= pos[0] < gh and 0 <= pos[1] < gw):
            raise ValueError(f'patch position {pos} outside the {gh}x{gw} grid of a {h}x{w} '
                             f'image with patch_size={self.patch_size}')
        rgb = np.ascontiguousarray(img[..., ::-1])
        corrupted = corrupt_image(rgb, self.corruption, self.severity, rng)[..., ::-1]
        t, l, b, r = patch_box(pos, self.patch_size)
        out = img.copy()
        out[t:b, l:r] = corrupted[t:b, l:r]
        results['img'] = out
        results['patch_corruption'] = dict(corruption=self.corruption, severity=self.severity,
                                           position=pos, patch_size=self.patch_size)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(corruption={self.corruption!r}, '
                f'severity={self.severity}, patch_size={self.patch_size}, '
                f'position={self.position!r}, seed={self.seed})')


# ------------------------------------------------------------ model access and pixel space
def preprocessor_stats(model: nn.Module, device=None) -> Tuple[Tensor, Tensor]:
    """``(mean, std)`` of the model's data preprocessor as ``(1, C, 1, 1)`` tensors (zeros and
    ones when it does not normalise)."""
    pre = getattr(model, 'data_preprocessor', None)
    mean, std = getattr(pre, 'mean', None), getattr(pre, 'std', None)
    if mean is None or std is None or not getattr(pre, '_enable_normalize', True):
        mean, std = torch.zeros(3), torch.ones(3)
    return mean.view(1, -1, 1, 1).float().to(device), std.view(1, -1, 1, 1).float().to(device)


def denormalize(inputs: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """Preprocessed inputs back to pixel values (0-255, the model's channel order)."""
    return inputs * std + mean


def normalize(pixels: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    return (pixels - mean) / std


def classifier_fn(model: nn.Module) -> Callable[[Tensor], Tensor]:
    """``inputs -> logits`` for an mmpretrain classifier (``mode='tensor'``) or a plain module."""
    def fn(x: Tensor) -> Tensor:
        try:
            out = model(x, mode='tensor')
        except TypeError:
            out = model(x)
        if isinstance(out, (tuple, list)):
            out = out[-1]
        return out
    return fn


# -------------------------------------------------------------------- adversarial / random
def patch_pgd(fn: Callable[[Tensor], Tensor], inputs: Tensor, labels: Tensor,
              position: Position, patch_size: int, mean: Tensor, std: Tensor,
              eps: float = 255.0, steps: int = 100, step_size: float = 8.0,
              random_start: bool = True, seed: Optional[int] = 0
              ) -> Tuple[Tensor, Tensor]:
    """Untargeted L∞ PGD (Madry et al.) restricted to one grid patch, in pixel space.

    ``inputs`` are preprocessed (normalised) images; the perturbation ``delta`` lives on the
    0-255 pixel values of the model's channel order, is zero outside the patch, ``|delta| ≤ eps``
    and keeps pixels in [0, 255]. Each step ascends the cross-entropy of ``labels`` by
    ``step_size · sign(∇)``; the iterate with the highest loss per image is returned.

    Returns ``(adversarial inputs (normalised), delta (pixels))``.
    """
    mask = patch_mask(inputs.shape, position, patch_size, inputs.device)
    pixels = denormalize(inputs.detach(), mean, std)
    labels = labels.to(inputs.device)
    if random_start:
        gen = torch.Generator(device='cpu')
        if seed is not None:
            gen.manual_seed(seed)
        noise = torch.rand(inputs.shape, generator=gen).to(inputs.device) * 2 - 1
        delta = noise * eps * mask
    else:
        delta = torch.zeros_like(pixels)
    delta = ((pixels + delta).clamp(0, 255) - pixels) * mask
    best_delta, best_loss = delta.clone(), torch.full((inputs.shape[0], ), -float('inf'),
                                                      device=inputs.device)
    for step in range(steps + 1):
        delta.requires_grad_(True)
        with torch.enable_grad():
            loss = F.cross_entropy(fn(normalize(pixels + delta, mean, std)), labels,
                                   reduction='none')
            grad = torch.autograd.grad(loss.sum(), delta)[0] if step < steps else None
        with torch.no_grad():
            better = loss.detach() > best_loss
            best_loss = torch.where(better, loss.detach(), best_loss)
            best_delta[better] = delta.detach()[better]
            if grad is None:
                break
            delta = delta.detach() + step_size * grad.sign() * mask
            delta = delta.clamp(-eps, eps)
            delta = ((pixels + delta).clamp(0, 255) - pixels) * mask
    adv = normalize(pixels + best_delta, mean, std)
    return adv.detach(), best_delta.detach()


def patch_random_noise(inputs: Tensor, position: Position, patch_size: int, mean: Tensor,
                       std: Tensor, eps: float = 255.0, seed: Optional[int] = 0
                       ) -> Tuple[Tensor, Tensor]:
    """Uniform noise in ``[-eps, eps]`` (pixels) on the same patch, clipped to [0, 255]: the
    control with the adversarial attack's budget but no optimisation."""
    mask = patch_mask(inputs.shape, position, patch_size, inputs.device)
    gen = torch.Generator(device='cpu')
    if seed is not None:
        gen.manual_seed(seed)
    pixels = denormalize(inputs, mean, std)
    noise = (torch.rand(inputs.shape, generator=gen).to(inputs.device) * 2 - 1) * eps
    delta = ((pixels + noise * mask).clamp(0, 255) - pixels) * mask
    return normalize(pixels + delta, mean, std), delta


def corrupt_inputs(inputs: Tensor, mean: Tensor, std: Tensor, corruption: str,
                   severity: int = 5, seed: Optional[int] = 0) -> Tensor:
    """Preprocessed inputs with the whole image corrupted (paste a patch of it with
    :func:`paste_patch`). The model's channel order is treated as RGB."""
    pixels = denormalize(inputs, mean, std).round().clamp(0, 255).byte().permute(0, 2, 3, 1)
    out = []
    for i, img in enumerate(pixels.cpu().numpy()):
        rng = np.random.default_rng([0 if seed is None else seed, i])
        out.append(torch.from_numpy(corrupt_image(np.ascontiguousarray(img), corruption,
                                                  severity, rng)))
    corrupted = torch.stack(out).permute(0, 3, 1, 2).float().to(inputs.device)
    return normalize(corrupted, mean, std)


# ------------------------------------------------------------------------------- attention
class AttentionRecorder(contextlib.AbstractContextManager):
    """Record the attention maps ``(B, heads, N, N)`` of every ``BiasedSelfAttention`` of a model
    while active (``maps``: one per layer, per forward). Plain mmpretrain attention must be
    swapped first (``mmmask.models.layers.ensure_biased_attention``)."""

    def __init__(self, model: nn.Module) -> None:
        from mmmask.models.layers import BiasedSelfAttention
        self.layers = [m for m in model.modules() if isinstance(m, BiasedSelfAttention)]
        self.maps: List[Tensor] = []
        self.num_extra_tokens = self.layers[0].num_extra_tokens if self.layers else 0

    def __enter__(self):
        for layer in self.layers:
            def forward(x, hw=None, _layer=layer):
                out, attn = _layer.attention(x, hw)
                self.maps.append(attn.detach())
                return out
            layer.forward = forward
        return self

    def __exit__(self, *exc) -> None:
        for layer in self.layers:
            del layer.forward  # back to the class's forward


def received_attention(maps: Sequence[Tensor], query: str = 'all') -> Tensor:
    """Attention mass each token receives, ``(B, layers, N)``: the maps ``(B, heads, N, N)``
    averaged over heads and over queries (``'all'``) or read from the CLS query (``'cls'``)."""
    if query not in ('all', 'cls'):
        raise ValueError(f"query must be 'all' or 'cls', got {query!r}")
    rows = [(a[..., 0, :] if query == 'cls' else a.mean(dim=-2)).mean(dim=1) for a in maps]
    return torch.stack(rows, dim=1)


def attention_share(maps: Union[Sequence[Tensor], Tensor], position: Position,
                    grid: Tuple[int, int], num_extra_tokens: int = 0,
                    query: str = 'all') -> Tensor:
    """Attention mass received by the patch token at ``position``, ``(N_images, layers)``.

    ``maps``: the per-layer attention maps ``(B, heads, N, N)`` (averaged over heads and over
    all queries, or the CLS query with ``query='cls'``) or :func:`received_attention` output."""
    received = maps if torch.is_tensor(maps) else received_attention(maps, query)
    gh, gw = grid
    n = received.shape[0]
    if received.shape[-1] != num_extra_tokens + gh * gw:
        raise ValueError(f'attention over {received.shape[-1]} tokens does not match a {gh}x{gw} '
                         f'grid with {num_extra_tokens} extra tokens')
    pos = _positions(position, n).to(received.device)
    token = num_extra_tokens + pos[:, 0] * gw + pos[:, 1]
    return received[torch.arange(n, device=received.device), :, token]


# ------------------------------------------------------------------------------ evaluation
def fooling_rate(clean_pred: Tensor, pert_pred: Tensor, labels: Tensor) -> float:
    """Share of the clean-correct images misclassified after the perturbation (NaN if none)."""
    correct = clean_pred == labels
    if not correct.any():
        return float('nan')
    return float((pert_pred[correct] != labels[correct]).float().mean())


def _batched(fn, x: Tensor, batch_size: int) -> Tensor:
    return torch.cat([fn(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def evaluate_patch_robustness(
        model: nn.Module, inputs: Tensor, labels: Tensor, patch_size: int = 16,
        kinds: Sequence[str] = ('natural', 'adversarial', 'random'),
        corruptions: Sequence[str] = ('gaussian_noise', ), severity: int = 5,
        positions: Union[str, Sequence[Tuple[int, int]]] = 'all', eps: float = 255.0,
        steps: int = 100, step_size: float = 8.0, random_start: bool = True,
        batch_size: int = 64, record_attention: bool = True, seed: int = 0
) -> Dict[str, object]:
    """Per-patch natural / adversarial / random-noise robustness of a classifier.

    Args:
        model: a classifier whose ``data_preprocessor`` gives mean/std (mmpretrain
            ``ImageClassifier``) in eval mode; ``inputs`` are its preprocessed images.
        positions: ``'all'`` (every grid cell: a heat map), ``'random'`` (one seeded cell per
            image) or a list of ``(row, col)``.
        eps, steps, step_size, random_start: the PGD attack (pixels, 0-255).
        corruptions: natural corruptions (each one is a ``natural/<name>`` entry).
        record_attention: measure the attention share on the perturbed patch (ViTs whose
            attention is ``BiasedSelfAttention``; skipped otherwise).

    Returns a dict with ``clean_acc``, ``grid``, ``positions`` and per kind
    (``adversarial``, ``random``, ``natural/<corruption>``): ``fooling_rate`` (mean over
    positions), ``fooling_rate_map`` (grid, NaN where not evaluated), ``accuracy``,
    ``loss_increase`` and, with attention, ``attention_share`` / ``attention_share_clean``
    (mean over layers, positions and images), ``attention_share_map`` and
    ``attention_share_layers``; plus ``uniform_share = 1/N``.
    """
    device = inputs.device
    fn = classifier_fn(model)
    mean, std = preprocessor_stats(model, device)
    n, _, h, w = inputs.shape
    gh, gw = patch_grid(h, w, patch_size)
    labels = labels.to(device)
    recorder = AttentionRecorder(model) if record_attention else None
    if recorder is not None and not recorder.layers:
        recorder = None

    def run(x: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """Logits and (ViTs) the attention each token receives, (B, layers, tokens)."""
        with torch.no_grad():
            if recorder is None:
                return _batched(fn, x, batch_size), None
            logits, received = [], []
            for i in range(0, x.shape[0], batch_size):
                recorder.maps = []
                with recorder:
                    logits.append(fn(x[i:i + batch_size]))
                received.append(received_attention(recorder.maps))
            return torch.cat(logits), torch.cat(received)

    if positions == 'all':
        cells = [(r, c) for r in range(gh) for c in range(gw)]
        per_image = None
    elif positions == 'random':
        gen = torch.Generator().manual_seed(seed)
        flat = torch.randint(gh * gw, (n, ), generator=gen)
        per_image = torch.stack([flat // gw, flat % gw], dim=1)
        cells = [None]
    else:
        cells, per_image = [tuple(p) for p in positions], None

    clean_logits, clean_received = run(inputs)
    clean_pred = clean_logits.argmax(1)
    clean_loss = F.cross_entropy(clean_logits, labels, reduction='none')
    result: Dict[str, object] = dict(
        clean_acc=float((clean_pred == labels).float().mean()), num_images=n,
        grid=[gh, gw], patch_size=patch_size, positions=positions if isinstance(positions, str)
        else [list(c) for c in cells], severity=severity,
        attack=dict(eps=eps, steps=steps, step_size=step_size, random_start=random_start))
    if recorder is not None:
        result['uniform_share'] = 1.0 / (recorder.num_extra_tokens + gh * gw)

    corrupted = {name: corrupt_inputs(inputs, mean, std, name, severity, seed)
                 for name in corruptions} if 'natural' in kinds else {}
    entries = [k for k in kinds if k != 'natural'] + [f'natural/{c}' for c in corrupted]
    for kind in entries:
        fr_map = torch.full((gh, gw), float('nan'))
        share_map = torch.full((gh, gw), float('nan'))
        preds, losses, shares, clean_shares, layer_shares = [], [], [], [], []
        for cell in cells:
            pos = per_image if cell is None else cell
            if kind == 'adversarial':
                x = torch.cat([patch_pgd(fn, inputs[i:i + batch_size], labels[i:i + batch_size],
                                         pos if cell is not None else pos[i:i + batch_size],
                                         patch_size, mean, std, eps, steps, step_size,
                                         random_start, seed)[0]
                               for i in range(0, n, batch_size)])
            elif kind == 'random':
                x = patch_random_noise(inputs, pos, patch_size, mean, std, eps, seed)[0]
            elif kind.startswith('natural/'):
                x = paste_patch(inputs, corrupted[kind.split('/', 1)[1]], pos, patch_size)
            else:
                raise ValueError(f"unknown perturbation kind {kind!r}; use 'natural', "
                                 "'adversarial' or 'random'")
            logits, received = run(x)
            pred = logits.argmax(1)
            preds.append(pred)
            losses.append(F.cross_entropy(logits, labels, reduction='none') - clean_loss)
            if cell is not None:
                fr_map[cell] = fooling_rate(clean_pred, pred, labels)
            if received is not None:
                extra = recorder.num_extra_tokens
                share = attention_share(received, pos, (gh, gw), extra)
                clean_share = attention_share(clean_received, pos, (gh, gw), extra)
                shares.append(share.mean(1))
                clean_shares.append(clean_share.mean(1))
                layer_shares.append(share.mean(0))
                if cell is not None:
                    share_map[cell] = float(share.mean())
        all_pred = torch.cat(preds)
        all_labels = labels.repeat(len(cells))
        entry = dict(
            fooling_rate=fooling_rate(clean_pred.repeat(len(cells)), all_pred, all_labels),
            accuracy=float((all_pred == all_labels).float().mean()),
            loss_increase=float(torch.cat(losses).mean()))
        if cells[0] is not None:
            entry['fooling_rate_map'] = fr_map.tolist()
        if shares:
            entry.update(attention_share=float(torch.cat(shares).mean()),
                         attention_share_clean=float(torch.cat(clean_shares).mean()),
                         attention_share_layers=torch.stack(layer_shares).mean(0).tolist())
            if cells[0] is not None:
                entry['attention_share_map'] = share_map.tolist()
        result[kind] = entry
    return result
