"""ForNet datasets and the offline ForAug preparation (Nauen et al., arXiv 2503.09399).

Layout (the official "folder" mode of ``ForNet``; file types free)::

    ROOT/{train,val}/foregrounds/<class>/<name>.png   RGBA, cropped to the object's box
    ROOT/{train,val}/backgrounds/<class>/<name>.jpg   the image with the object inpainted
    ROOT/fg_bg_ratios_{train,val}.json                {"<class>/<name>.<bg ext>": obj px / img px}

Offline preparation (the official ``segment_imagenet.py`` + ``foreground_size_ratio.py``): the
object mask comes from given masks or from any mmseg model (class-agnostic: every pixel not
predicted as one of the background classes); the foreground is the masked image cropped to the
mask's box with the mask as alpha; the background is the image with the (Gaussian-blurred, hence
grown) mask inpainted. The paper inpaints with LaMa or Attentive Eraser (GPU diffusion/LaMa
models); here OpenCV's ``cv2.inpaint`` (Telea, or Navier-Stokes) is the CPU substitute: it fills
small holes well and large ones with smeared colour, so backgrounds of big objects are blurrier
than the paper's (which is one reason ``pruning_ratio`` drops them).
"""
import json
import os
import os.path as osp
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.hooks import Hook

from mmmask.registry import DATASETS, HOOKS
from .transforms.foraug import use_original_image

__all__ = [
    'ForNetDataset', 'ForNetEpochHook', 'foreground_rgba', 'inpaint_background', 'fg_bg_ratio',
    'split_image', 'segment_foreground_mmseg', 'prepare_fornet', 'prepare_toy_fornet',
    'BACKGROUND_COMBINATIONS'
]

BACKGROUND_COMBINATIONS = ('all', 'same', 'original')
IMG_EXTS = ('.jpg', '.jpeg', '.png', '.webp', '.bmp', '.JPEG', '.JPG', '.PNG', '.WEBP')


# ----------------------------------------------------------------------------- offline preparation
def foreground_rgba(img: np.ndarray, mask: np.ndarray) -> Optional[np.ndarray]:
    """The masked image (BGR, HxWx3) with ``mask`` (HxW, bool or [0, 255]) as alpha, cropped to the
    mask's bounding box (official ``smallest_crop``); ``None`` for an empty mask."""
    alpha = (mask > 0).astype(np.uint8) * 255 if mask.dtype == bool or mask.max() <= 1 \
        else mask.astype(np.uint8)
    ys, xs = np.nonzero(alpha)
    if len(ys) == 0:
        return None
    rgb = (img.astype(np.float32) * (alpha[..., None] / 255.0)).round().astype(np.uint8)
    rgba = np.concatenate([rgb, alpha[..., None]], -1)
    return rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def inpaint_background(img: np.ndarray, mask: np.ndarray, blur_radius: float = 7.0,
                       method: str = 'telea', inpaint_radius: int = 5) -> np.ndarray:
    """Remove the object: blur the binary mask with a Gaussian of ``blur_radius`` (official: PIL
    radius 7 before LaMa, which inpaints every pixel the blurred mask touches) and fill those pixels
    with ``cv2.inpaint`` (``'telea'`` or ``'ns'``) — the CPU stand-in for LaMa/Attentive Eraser."""
    from PIL import Image, ImageFilter
    binary = ((mask > 0).astype(np.uint8) * 255)
    if blur_radius > 0:
        binary = np.asarray(Image.fromarray(binary).filter(ImageFilter.GaussianBlur(blur_radius)))
    hole = (binary > 0).astype(np.uint8)
    flags = {'telea': cv2.INPAINT_TELEA, 'ns': cv2.INPAINT_NS}
    if method not in flags:
        raise ValueError(f'inpaint method {method!r}: use one of {tuple(flags)}')
    if not hole.any():
        return img.copy()
    return cv2.inpaint(img, hole, inpaint_radius, flags[method])


def fg_bg_ratio(fg_rgba: np.ndarray, bg_shape: Sequence[int]) -> float:
    """Official ``foreground_size_ratio.py``: ``int(sum(alpha) / 255) / (W * H)`` of the image the
    background has (the original image size)."""
    return int(np.sum(fg_rgba[..., 3].astype(np.int64)) / 255) / float(bg_shape[0] * bg_shape[1])


def split_image(img: np.ndarray, mask: np.ndarray, blur_radius: float = 7.0,
                method: str = 'telea', min_pixels: int = 1
                ) -> Optional[Tuple[np.ndarray, np.ndarray, float]]:
    """``(foreground RGBA, inpainted background, fg/bg ratio)`` of one image and object mask, or
    ``None`` when the mask has fewer than ``min_pixels`` pixels (official ``no_detect``)."""
    if int((mask > 0).sum()) < min_pixels:
        return None
    fg = foreground_rgba(img, mask)
    bg = inpaint_background(img, mask, blur_radius, method)
    return fg, bg, fg_bg_ratio(fg, img.shape[:2])


def segment_foreground_mmseg(model, img: np.ndarray,
                             background_classes: Iterable[int] = (0, )) -> np.ndarray:
    """Class-agnostic foreground mask from an mmseg segmentor (``mmseg.apis.init_model``): every
    pixel whose predicted class is not in ``background_classes``."""
    from mmseg.apis import inference_model
    result = inference_model(model, img)
    pred = result.pred_sem_seg.data[0].cpu().numpy()
    return ~np.isin(pred, np.asarray(list(background_classes)))


def _write(path: str, img: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, img):
        raise OSError(f'could not write {path}')


def prepare_fornet(samples: Iterable[Tuple[str, str, np.ndarray, np.ndarray]], out_root: str,
                   split: str = 'train', blur_radius: float = 7.0, method: str = 'telea',
                   min_pixels: int = 1, fg_ext: str = '.png', bg_ext: str = '.jpg') -> Dict:
    """Write ForNet files for ``samples`` = ``(class_name, stem, BGR image, object mask)``.

    Returns ``{'written': n, 'no_detect': [...], 'ratios': {key: ratio}}`` and writes
    ``fg_bg_ratios_<split>.json`` (merged with an existing one)."""
    ratios, skipped, n = {}, [], 0
    for cls, stem, img, mask in samples:
        parts = split_image(img, mask, blur_radius, method, min_pixels)
        if parts is None:
            skipped.append(f'{cls}/{stem}')
            continue
        fg, bg, ratio = parts
        _write(osp.join(out_root, split, 'foregrounds', cls, stem + fg_ext), fg)
        _write(osp.join(out_root, split, 'backgrounds', cls, stem + bg_ext), bg)
        ratios[f'{cls}/{stem}{bg_ext}'] = ratio
        n += 1
    json_path = osp.join(out_root, f'fg_bg_ratios_{split}.json')
    if osp.isfile(json_path):
        with open(json_path) as f:
            ratios = {**json.load(f), **ratios}
    os.makedirs(out_root, exist_ok=True)
    with open(json_path, 'w') as f:
        json.dump(ratios, f)
    return dict(written=n, no_detect=skipped, ratios=ratios)


def _toy_scene_ann(seg_root: str, split: str, limit: Optional[int] = None):
    """Toy seg scenes as ForNet samples: the label is the digit covering the most pixels; the
    object mask is that digit's pixels; all other digits are removed too (background of a toy
    composite holds no digit)."""
    from .toy.scenes import THING_CLASSES
    sub = {'train': 'training', 'val': 'validation'}[split]
    img_dir = osp.join(seg_root, 'images', sub)
    names = sorted(f[:-4] for f in os.listdir(img_dir) if f.endswith('.jpg'))
    for name in names[:limit]:
        img = cv2.imread(osp.join(img_dir, name + '.jpg'))
        ann = cv2.imread(osp.join(seg_root, 'annotations', sub, name + '.png'),
                         cv2.IMREAD_GRAYSCALE).astype(np.int32) - 1  # ADE layout: class k -> k+1
        counts = np.bincount(ann[(ann >= 0) & (ann < len(THING_CLASSES))].ravel(),
                             minlength=len(THING_CLASSES))
        if counts.max() == 0:
            continue
        digit = int(counts.argmax())
        yield digit, name, img, ann


def _largest_instance(mask: np.ndarray) -> np.ndarray:
    """The largest blob of a class mask (strokes within 1 px joined): one digit, not all of them."""
    joined = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    if n <= 2:
        return mask
    keep = 1 + int(np.argmax([(mask & (labels == k)).sum() for k in range(1, n)]))
    return mask & (labels == keep)


def _toy_crop_samples(split: str, limit: Optional[int] = None):
    """The toy digit crops of ``configs/_base_/datasets/toy_cls.py`` (32 px, same seeds, so the
    images are byte-identical to ``data/toy/cls``), re-rendered to keep the digit's mask."""
    from .toy.formats import SIZES, _rng
    from .toy.scenes import digit_label, digit_pool, render_scene
    n = SIZES['cls'][split] if limit is None else min(limit, SIZES['cls'][split])
    for i in range(n):
        rng = _rng('cls', split, i)  # the draws of scenes.render_digit_crop, in its order
        size = 32
        gi = int(rng.choice(digit_pool(split)))
        s = int(rng.integers(size * 5 // 8, size * 7 // 8 + 1))
        top, left = (int(rng.integers(0, size - s + 1)) for _ in range(2))
        scene = render_scene(rng, split, size, digits=[(gi, s, top, left)])
        if not scene.instances:
            continue
        mask = scene.instances[0].mask
        yield digit_label(gi), f'{i:05d}', scene.image, mask, mask


def _toy_scene_samples(seg_root: str, split: str, limit: Optional[int] = None):
    """Toy seg scenes: class = the digit class with most pixels, object = its largest instance,
    removed = every digit (a toy background holds no digit)."""
    for digit, name, img, ann in _toy_scene_ann(seg_root, split, limit):
        yield digit, name, img, _largest_instance(ann == digit), (ann >= 0) & (ann < 10)


def prepare_toy_fornet(out_root: str, source: str = 'cls', splits: Sequence[str] = ('train', 'val'),
                       limit: Optional[int] = None, blur_radius: Optional[float] = None) -> str:
    """Toy ForNet whose masks are known, from the built-in toy world.

    ``source='cls'`` (default): the toy digit crops of ``configs/_base_/datasets/toy_cls.py``
    (32 px; 2,000 train / 500 val), re-rendered with their digit mask; ``'seg'``: the toy
    segmentation scenes (64 px; class = the digit class with most pixels, foreground = its largest
    instance, every digit inpainted). Background inpainting: Telea with mask blur radius 1
    instead of the official 7 (for ~400 px images). The source images go to
    ``orig/<split>/<class>/`` (the "original images" of ``orig_img_prob``). Written to a temporary
    folder, then renamed; idempotent."""
    import shutil
    import tempfile

    from .toy import ensure_toy_data
    if source not in ('cls', 'seg'):
        raise ValueError(f"toy ForNet source {source!r}: use 'cls' or 'seg'")
    blur_radius = 1.0 if blur_radius is None else blur_radius
    out_root = osp.abspath(out_root.rstrip('/'))
    if osp.isfile(osp.join(out_root, '.complete')):
        return out_root
    seg_root = ensure_toy_data('seg') if source == 'seg' else None
    os.makedirs(osp.dirname(out_root), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.fornet-', dir=osp.dirname(out_root))
    try:
        for split in splits:
            ratios = {}
            samples = _toy_crop_samples(split, limit) if source == 'cls' else \
                _toy_scene_samples(seg_root, split, limit)
            for digit, name, img, obj, removed in samples:
                fg = foreground_rgba(img, obj)
                bg = inpaint_background(img, removed, blur_radius)
                cls = str(digit)
                _write(osp.join(tmp, split, 'foregrounds', cls, name + '.png'), fg)
                _write(osp.join(tmp, split, 'backgrounds', cls, name + '.jpg'), bg)
                _write(osp.join(tmp, 'orig', split, cls, name + '.png'), img)
                ratios[f'{cls}/{name}.jpg'] = fg_bg_ratio(fg, img.shape[:2])
            with open(osp.join(tmp, f'fg_bg_ratios_{split}.json'), 'w') as f:
                json.dump(ratios, f)
        with open(osp.join(tmp, '.complete'), 'w') as f:
            f.write(f'toy_{source}')
        if osp.isfile(osp.join(out_root, '.complete')):  # another process finished first
            return out_root
        if osp.lexists(out_root):
            shutil.rmtree(out_root)
        os.rename(tmp, out_root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_root


# --------------------------------------------------------------------------------------- dataset
def _list_images(folder: str) -> List[str]:
    return sorted(f for f in os.listdir(folder) if f.endswith(IMG_EXTS)) \
        if osp.isdir(folder) else []


@DATASETS.register_module()
class ForNetDataset(BaseDataset):
    """ForAug training/evaluation data (``type='mmmask.ForNetDataset'``), official ``ForNet``.

    One sample per foreground; the background is chosen per ``background_combination``:
    ``'all'`` (any kept background), ``'same'`` (one of the foreground's class; falls back to one of
    that class's unpruned backgrounds), ``'original'`` (the foreground's own inpainted image).
    ``pruning_ratio``: backgrounds whose object covered ``>= pruning_ratio`` of their image are not
    used (official default 0.8; > 1 keeps all). Data infos give ``img_path`` (background),
    ``fg_path``, ``fg_ratio``, ``bg_ratio`` and ``gt_label`` for the pipeline
    ``LoadImageFromFile → mmmask.LoadForegroundFromFile → mmmask.ForegroundBackgroundRecombine``.

    ``orig_img_prob`` (float, ``'linear'``, ``'cos'``, ``'revlinear'``) with ``orig_root`` (a folder
    ``<orig_root>/<class>/<name>.<orig_ext>``) or ``orig_dataset`` (any mmpretrain-style dataset
    config; its samples are matched to foregrounds by ``<class dir>/<stem>``) shows the original
    image instead (``use_original=True``, the recombination transforms pass it through); schedules
    need ``epochs`` and :class:`ForNetEpochHook` (and non-persistent workers) to advance ``epoch``.
    ``background_combination`` etc. are drawn from ``seed`` (a private ``RandomState``) or from
    NumPy's global state. ``toy=True`` builds a toy ForNet at ``data_root`` first
    (:func:`prepare_toy_fornet`).
    """

    def __init__(self, data_root: str, split: str = 'train',
                 background_combination: str = 'all', pruning_ratio: float = 0.8,
                 orig_img_prob: Union[float, str] = 0.0, orig_root: Optional[str] = None,
                 orig_ext: str = '.JPEG', orig_dataset: Optional[dict] = None, epochs: int = 0,
                 classes: Optional[Sequence[str]] = None, seed: Optional[int] = None,
                 toy: bool = False, toy_limit: Optional[int] = None, **kwargs) -> None:
        if background_combination not in BACKGROUND_COMBINATIONS:
            raise ValueError(f'background_combination={background_combination!r}: use one of '
                             f'{BACKGROUND_COMBINATIONS}')
        if orig_img_prob != 0.0 and orig_root is None and orig_dataset is None:
            raise ValueError('orig_img_prob > 0 needs orig_root (folder of original images) or '
                             'orig_dataset (a dataset config)')
        if isinstance(orig_img_prob, str) and epochs <= 0:
            raise ValueError(f'orig_img_prob={orig_img_prob!r} needs epochs (the schedule length)')
        if toy:
            prepare_toy_fornet(data_root, limit=toy_limit)
        self.split = split
        self.background_combination = background_combination
        self.pruning_ratio = pruning_ratio
        self.orig_img_prob = orig_img_prob
        self.orig_root = orig_root
        self.orig_ext = orig_ext
        self.orig_dataset_cfg = orig_dataset
        self.epochs = epochs
        self._epoch = 0
        self._classes_arg = classes
        self.rng = np.random.RandomState(seed) if seed is not None else np.random
        metainfo = kwargs.pop('metainfo', None)
        super().__init__(data_root=data_root, metainfo=metainfo, **kwargs)

    # -- epoch for the orig_img_prob schedules
    @property
    def epoch(self) -> int:
        return self._epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        if self.epochs and value >= self.epochs:
            raise ValueError(f'epoch={value} must be < epochs={self.epochs}')
        self._epoch = value

    def load_data_list(self) -> List[dict]:
        base = osp.join(self.data_root, self.split)
        fg_dir, bg_dir = osp.join(base, 'foregrounds'), osp.join(base, 'backgrounds')
        if not osp.isdir(fg_dir):
            raise FileNotFoundError(
                f'ForNetDataset: {fg_dir} not found. Prepare the data with '
                '`python tools/analysis_tools/foraug_prepare.py` (or toy=True for the toy world)')
        ratio_file = osp.join(self.data_root, f'fg_bg_ratios_{self.split}.json')
        if not osp.isfile(ratio_file):
            raise FileNotFoundError(f'ForNetDataset: {ratio_file} not found (written by '
                                    'foraug_prepare.py; it holds the object/image area ratios)')
        with open(ratio_file) as f:
            ratios = {'/'.join(k.split('/')[-2:]): v for k, v in json.load(f).items()}
        classes = list(self._classes_arg) if self._classes_arg is not None else sorted(
            d for d in os.listdir(fg_dir) if osp.isdir(osp.join(fg_dir, d)))
        self._metainfo['classes'] = tuple(classes)
        cls_idx = {c: i for i, c in enumerate(classes)}

        backgrounds, stems = [], {}
        for cls in classes:
            for f in _list_images(osp.join(bg_dir, cls)):
                backgrounds.append(f'{cls}/{f}')
                stems[f'{cls}/{osp.splitext(f)[0]}'] = f'{cls}/{f}'
        self.bg_dir = bg_dir
        self.all_backgrounds = backgrounds
        self.fg_bg_ratios = ratios
        self.backgrounds = [b for b in backgrounds
                            if self.pruning_ratio > 1.0 or ratios.get(b, 1e9) < self.pruning_ratio]
        self.cls_to_backgrounds = {}
        for b in self.backgrounds:
            self.cls_to_backgrounds.setdefault(b.split('/')[0], []).append(b)
        for cls in classes:  # official: a class with every background pruned keeps one
            if not self.cls_to_backgrounds.get(cls):
                own = [b for b in backgrounds if b.split('/')[0] == cls]
                if own:
                    self.cls_to_backgrounds[cls] = own[-1:]
        if self.background_combination == 'all' and not self.backgrounds:
            raise ValueError(f'ForNetDataset: no background left after pruning_ratio='
                             f'{self.pruning_ratio}; raise it (1.1 keeps all)')

        data_list = []
        for cls in classes:
            for f in _list_images(osp.join(fg_dir, cls)):
                stem = f'{cls}/{osp.splitext(f)[0]}'
                own_bg = stems.get(stem)
                data_list.append(dict(fg_path=osp.join(fg_dir, cls, f), fg_key=stem,
                                      own_bg=own_bg, gt_label=cls_idx[cls],
                                      fg_ratio=ratios.get(own_bg, 0.0) if own_bg else 0.0))
        if not data_list:
            raise ValueError(f'ForNetDataset: no foregrounds under {fg_dir}/<class>/')
        self._orig_lookup = None
        return data_list

    def _original_path(self, fg_key: str) -> str:
        if self.orig_root is not None:
            return osp.join(self.orig_root, fg_key + self.orig_ext)
        if self._orig_lookup is None:
            ds = DATASETS.build(self.orig_dataset_cfg) if isinstance(self.orig_dataset_cfg, dict) \
                else self.orig_dataset_cfg
            self._orig_lookup = {}
            for i in range(len(ds)):
                path = ds.get_data_info(i)['img_path']
                key = '/'.join(osp.splitext(path)[0].replace(os.sep, '/').split('/')[-2:])
                self._orig_lookup[key] = path
        if fg_key not in self._orig_lookup:
            raise KeyError(f'ForNetDataset: no original image for {fg_key} in orig_dataset')
        return self._orig_lookup[fg_key]

    def choose_background(self, info: dict) -> str:
        """Background key ``<class>/<file>`` for a foreground (official order of RNG draws)."""
        if self.background_combination == 'all':
            return self.backgrounds[self.rng.randint(len(self.backgrounds))]
        if self.background_combination == 'original':
            if info['own_bg'] is None:
                raise KeyError(f"ForNetDataset: foreground {info['fg_key']} has no background of "
                               'its own (background_combination="original")')
            return info['own_bg']
        pool = self.cls_to_backgrounds.get(info['fg_key'].split('/')[0])
        if not pool:
            raise KeyError(f"ForNetDataset: class of {info['fg_key']} has no background")
        return pool[self.rng.randint(len(pool))]

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        if self.orig_img_prob != 0.0 and use_original_image(self.orig_img_prob, self._epoch,
                                                            self.epochs, self.rng):
            info.update(img_path=self._original_path(info['fg_key']), use_original=True)
            return info
        bg = self.choose_background(info)
        info.update(img_path=osp.join(self.bg_dir, bg), bg_key=bg, use_original=False,
                    bg_ratio=self.fg_bg_ratios.get(bg, info['fg_ratio']))
        return info


@HOOKS.register_module()
class ForNetEpochHook(Hook):
    """Set ``train_dataloader.dataset.epoch`` before every training epoch (the ``orig_img_prob``
    schedules of :class:`ForNetDataset`; use ``persistent_workers=False`` so workers see it)."""

    def before_train_epoch(self, runner) -> None:
        ds = runner.train_dataloader.dataset
        while not isinstance(ds, ForNetDataset) and hasattr(ds, 'dataset'):
            ds = ds.dataset
        if isinstance(ds, ForNetDataset) and ds.epochs:
            ds.epoch = min(runner.epoch, ds.epochs - 1)


@DATASETS.register_module(name='ForNetToyData')
def build_toy_fornet(data_root: str = 'data/toy/fornet', source: str = 'cls',
                     **kwargs) -> ForNetDataset:
    """``type='mmmask.ForNetToyData'``: :class:`ForNetDataset` over the toy ForNet
    (:func:`prepare_toy_fornet` from ``source``), generated once into the toy cache and linked at
    ``data_root`` (like ``mmmask.ToyData``). Every other keyword goes to :class:`ForNetDataset`."""
    from .toy import cache_dir
    cached = prepare_toy_fornet(osp.join(cache_dir(), f'fornet_{source}'), source)
    root = osp.abspath(data_root.rstrip('/'))
    stale_link = osp.islink(root) and osp.realpath(root) != osp.realpath(cached)
    if stale_link or not osp.isfile(osp.join(root, '.complete')):
        if osp.islink(root) or not osp.exists(root):
            os.makedirs(osp.dirname(root), exist_ok=True)
            tmp_link = f'{root}.{os.getpid()}.lnk'
            os.symlink(cached, tmp_link)
            os.replace(tmp_link, root)
        else:
            raise FileExistsError(f'{root} exists but is not a toy ForNet; remove it')
    return ForNetDataset(data_root=root + '/', **kwargs)


__all__ += ['build_toy_fornet']
