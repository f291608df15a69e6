"""Procedural scenes built from real handwritten digits (scikit-learn's ``load_digits``).

One renderer, many views of the same scene: an RGB image, a semantic map, visible instance masks, a
metric depth map and surface normals. Styles give a domain-shifted twin (palette, texture, blur).
Everything is a pure function of a seed, so the data written from it is reproducible byte for byte.
"""
from dataclasses import dataclass, field
from functools import lru_cache
from typing import List, Optional, Tuple

import cv2
import numpy as np

DIGIT_NAMES = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine')
THING_CLASSES = DIGIT_NAMES
STUFF_CLASSES = ('sky', 'ground')
#: Class order shared by every toy task: digits (things) first, then stuff; a digit's label is itself.
CLASSES = THING_CLASSES + STUFF_CLASSES
PALETTE = [(220, 20, 60), (119, 11, 32), (0, 0, 142), (0, 0, 230), (106, 0, 228), (0, 60, 100),
           (0, 80, 100), (0, 0, 70), (0, 0, 192), (250, 170, 30), (70, 130, 180), (152, 251, 152)]
SKY, GROUND = len(THING_CLASSES), len(THING_CLASSES) + 1
IGNORE = 255

FOCAL = 60.0  # pinhole focal length in pixels used for depth and normals
MAX_DEPTH = 10.0  # metres; the sky sits at this depth


@lru_cache(maxsize=1)
def _digits() -> Tuple[np.ndarray, np.ndarray]:
    """The 1,797 8x8 digits of scikit-learn (shipped inside the package, no download), in [0, 1]."""
    from sklearn.datasets import load_digits
    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


def digit_pool(split: str) -> np.ndarray:
    """Indices of the glyphs a split may use: every 5th writer sample is held out for validation."""
    _, labels = _digits()
    idx = np.arange(len(labels))
    return idx[idx % 5 == 0] if split != 'train' else idx[idx % 5 != 0]


def digit_label(index: int) -> int:
    return int(_digits()[1][index])


def glyph(index: int, size: int) -> np.ndarray:
    """Glyph ``index`` as a smooth ``size x size`` alpha map in [0, 1]."""
    img = np.pad(_digits()[0][index], 1)
    return np.clip(cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC), 0, 1)


@dataclass(frozen=True)
class Style:
    """How a scene is painted. Geometry and labels do not depend on the style."""
    sky_top: Tuple[int, int, int]
    sky_bottom: Tuple[int, int, int]
    ground: Tuple[int, int, int]
    texture: str  # 'noise' or 'stripes'
    texture_amp: float
    hue_range: Tuple[float, float]  # digit hues, OpenCV's [0, 180) scale
    blur: float = 0.0
    noise: float = 4.0


SOURCE = Style(sky_top=(200, 140, 60), sky_bottom=(250, 210, 150), ground=(60, 120, 70),
               texture='noise', texture_amp=18.0, hue_range=(0, 180))
#: The domain-shifted twin: dusk palette, striped ground, warm digits, camera blur and sensor noise.
TARGET = Style(sky_top=(90, 40, 110), sky_bottom=(150, 120, 230), ground=(110, 110, 120),
               texture='stripes', texture_amp=35.0, hue_range=(5, 35), blur=0.8, noise=10.0)
STYLES = {'source': SOURCE, 'target': TARGET}


@dataclass
class Instance:
    label: int
    mask: np.ndarray  # visible pixels (bool, HxW)
    depth: float


@dataclass
class Scene:
    image: np.ndarray  # HxWx3 uint8, BGR (OpenCV order)
    semantic: np.ndarray  # HxW uint8 class index, IGNORE where unlabelled
    depth: np.ndarray  # HxW float32 metres
    normals: np.ndarray  # HxWx3 float32 unit vectors (camera frame); zeros where undefined (sky)
    instances: List[Instance] = field(default_factory=list)


def _background(rng: np.random.Generator, h: int, w: int, horizon: int, style: Style) -> np.ndarray:
    img = np.empty((h, w, 3), np.float32)
    t = np.linspace(0, 1, max(horizon, 1))[:, None]
    sky = (1 - t) * np.array(style.sky_top) + t * np.array(style.sky_bottom)
    img[:horizon] = sky[:, None, :] + rng.normal(0, 3, (horizon, 1, 3))
    rows = h - horizon
    ground = np.array(style.ground, np.float32) * rng.uniform(0.8, 1.2)
    yy, xx = np.mgrid[0:rows, 0:w].astype(np.float32)
    if style.texture == 'stripes':
        period = rng.uniform(4, 8)
        tex = np.sign(np.sin((xx + 0.6 * yy) * 2 * np.pi / period))
    else:
        tex = cv2.GaussianBlur(rng.normal(0, 1, (rows, w)).astype(np.float32), (0, 0), 1.2)
        tex /= tex.std() + 1e-6
    img[horizon:] = ground + style.texture_amp * tex[..., None]
    return img


def _digit_colour(rng: np.random.Generator, style: Style) -> np.ndarray:
    hsv = np.array([[[rng.uniform(*style.hue_range), rng.uniform(170, 255), rng.uniform(170, 255)]]])
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _normals_from_depth(depth: np.ndarray) -> np.ndarray:
    """Camera-frame unit normals of the back-projected depth map, facing the camera."""
    h, w = depth.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    pts = np.stack([(xx - w / 2) * depth / FOCAL, (yy - h / 2) * depth / FOCAL, depth], -1)
    dx = np.gradient(pts, axis=1)
    dy = np.gradient(pts, axis=0)
    n = np.cross(dx, dy)
    n /= np.linalg.norm(n, axis=-1, keepdims=True) + 1e-8
    facing = (n * pts).sum(-1, keepdims=True) > 0
    return np.where(facing, -n, n).astype(np.float32)


def _overlap(a: Tuple[int, int, int], b: Tuple[int, int, int]) -> float:
    """Intersection over the smaller of two square boxes ``(size, top, left)``."""
    (sa, ta, la), (sb, tb, lb) = a, b
    ih = max(0, min(ta + sa, tb + sb) - max(ta, tb))
    iw = max(0, min(la + sa, lb + sb) - max(la, lb))
    return ih * iw / min(sa, sb)**2


def _layout(rng: np.random.Generator, split: str, size: int,
            max_digits: int) -> List[Tuple[int, int, int, int]]:
    """1..max_digits digits of 3/8..9/16 of the image side, overlapping by at most 25%."""
    pool = digit_pool(split)
    boxes: List[Tuple[int, int, int]] = []
    for _ in range(int(rng.integers(1, max_digits + 1))):
        for _attempt in range(20):
            s = int(rng.integers(size * 3 // 8, size * 9 // 16 + 1))
            box = (s, int(rng.integers(0, size - s + 1)), int(rng.integers(0, size - s + 1)))
            if all(_overlap(box, b) <= 0.25 for b in boxes):
                boxes.append(box)
                break
    return [(int(rng.choice(pool)), s, top, left) for s, top, left in boxes]


def render_scene(rng: np.random.Generator, split: str = 'train', size: int = 64,
                 style: Style = SOURCE, max_digits: int = 3,
                 digits: Optional[List[Tuple[int, int, int, int]]] = None) -> Scene:
    """Paint one scene: sky above a horizon, textured ground below, 1..max_digits digits on top.

    ``digits`` may fix the layout as ``(glyph_index, size, top, left)`` tuples (used by sequences);
    otherwise it is drawn from ``rng``. Nearer digits occlude farther ones.
    """
    h = w = size
    horizon = int(rng.integers(size * 5 // 16, size * 10 // 16))
    img = _background(rng, h, w, horizon, style)
    semantic = np.full((h, w), GROUND, np.uint8)
    semantic[:horizon] = SKY
    rows = np.arange(h, dtype=np.float32)[:, None].repeat(w, 1)
    depth = np.full((h, w), MAX_DEPTH, np.float32)
    below = rows > horizon
    depth[below] = np.minimum(MAX_DEPTH, 1.5 * FOCAL / (rows[below] - horizon))

    _, labels = _digits()
    if digits is None:
        digits = _layout(rng, split, size, max_digits)
    placed = [(float(rng.uniform(1.0, 6.0)), d) for d in digits]
    placed.sort(key=lambda p: -p[0])  # far to near: painter's algorithm
    owner = np.full((h, w), -1, np.int64)
    for k, (z, (gi, s, top, left)) in enumerate(placed):
        alpha = glyph(gi, s)
        colour = _digit_colour(rng, style)
        win = (slice(top, top + s), slice(left, left + s))
        a = np.clip(alpha * 1.6, 0, 1)[..., None]
        img[win] = img[win] * (1 - a) + colour * a
        m = alpha > 0.4
        semantic[win][m] = labels[gi]
        owner[win][m] = k
        depth[win][m] = z - 0.25 * alpha[m]  # raised relief: strokes stand out of the billboard
    instances = []
    for k, (z, (gi, _, _, _)) in enumerate(placed):
        m = owner == k
        if m.sum() >= 12:
            instances.append(Instance(int(labels[gi]), m, z))
        else:  # almost fully hidden: its visible crumbs are ignored, not a tiny instance
            semantic[m] = IGNORE
    normals = _normals_from_depth(depth)
    normals[semantic == SKY] = 0
    if style.blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), style.blur)
    img += rng.normal(0, style.noise, img.shape)
    return Scene(np.clip(img, 0, 255).astype(np.uint8), semantic, depth, normals, instances)


def render_digit_crop(rng: np.random.Generator, split: str = 'train', size: int = 32,
                      style: Style = SOURCE) -> Tuple[np.ndarray, int]:
    """A classification sample: one digit, jittered in scale and position, over a scene background."""
    pool = digit_pool(split)
    gi = int(rng.choice(pool))
    s = int(rng.integers(size * 5 // 8, size * 7 // 8 + 1))
    top, left = (int(rng.integers(0, size - s + 1)) for _ in range(2))
    scene = render_scene(rng, split, size, style, digits=[(gi, s, top, left)])
    return scene.image, digit_label(gi)
