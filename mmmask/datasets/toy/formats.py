"""Writers that lay toy scenes out in the folder formats the upstream dataset classes read.

=======  =====================================================  ==========================================
world    layout                                                 upstream reader
=======  =====================================================  ==========================================
cls      ``{train,val}/<digit>/<n>.png`` (32 px)                mmpretrain ``CustomDataset``
seg      ADE20K: ``images|annotations/{training,validation}``   mmseg ``BaseSegDataset`` (ADE20K settings)
coco     COCO: ``{train,val}/``, ``annotations/instances_*``,   mmdet ``CocoDataset``,
         ``annotations/panoptic_*.json`` + PNGs                 ``CocoPanopticDataset``
nyu      NYU-v2: ``images|annotations/{train,test}`` (depth     mmseg ``NYUDataset``; ``normals/`` and
         uint16 mm), ``normals/``, ``semantic/``                ``semantic/`` alongside for dense tasks
uda      ``source/`` and ``target/`` ADE20K trees, two styles   mmseg ``BaseSegDataset``
seq      ``{train,val}/<seq>/<t>.png`` + ``{train,val}.json``    mmpretrain ``CustomDataset`` / the json
=======  =====================================================  ==========================================
"""
import json
import os
import os.path as osp
import zlib
from typing import Callable, Dict, List

import cv2
import numpy as np

from .scenes import (CLASSES, SOURCE, STYLES, THING_CLASSES, Scene, Style, digit_label,
                     digit_pool, render_digit_crop, render_scene)

SEED = 20240607
#: Number of samples per split; scenes are 64x64, classification crops 32x32.
SIZES = {
    'cls': {'train': 2000, 'val': 500},
    'seg': {'train': 1000, 'val': 200},
    'coco': {'train': 400, 'val': 100},
    'nyu': {'train': 400, 'test': 100},
    'uda': {'train': 600, 'val': 200},
    'seq': {'train': 60, 'val': 20},
}
SEQ_LEN = 8
_WORLD_IDS = {name: i for i, name in enumerate(SIZES)}


def _rng(world: str, split: str, index: int, extra: int = 0) -> np.random.Generator:
    return np.random.default_rng([SEED, _WORLD_IDS[world], zlib_crc(split), index, extra])


def zlib_crc(text: str) -> int:
    return zlib.crc32(text.encode())


def _imwrite(path: str, img: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if path.endswith('.jpg') else []
    if not cv2.imwrite(path, img, params):
        raise OSError(f'could not write {path}')


def _write_ade(root: str, scenes: Callable[[str, int], Scene], splits: Dict[str, int]) -> None:
    """ADE20K layout: label 0 is 'unlabelled' (reduce_zero_label=True), class k is stored as k+1."""
    for split, n in splits.items():
        sub = {'train': 'training', 'val': 'validation'}[split]
        for i in range(n):
            scene = scenes(split, i)
            name = f'toy_{split}_{i:05d}'
            _imwrite(osp.join(root, 'images', sub, name + '.jpg'), scene.image)
            ann = (scene.semantic.astype(np.int32) + 1) % 256  # IGNORE(255) -> 0
            _imwrite(osp.join(root, 'annotations', sub, name + '.png'), ann.astype(np.uint8))


def write_cls(root: str) -> None:
    for split, n in SIZES['cls'].items():
        for i in range(n):
            img, label = render_digit_crop(_rng('cls', split, i), split)
            _imwrite(osp.join(root, split, str(label), f'{i:05d}.png'), img)


def write_seg(root: str) -> None:
    _write_ade(root, lambda s, i: render_scene(_rng('seg', s, i), s), SIZES['seg'])


def write_uda(root: str) -> None:
    """The same scene distribution painted in two styles; source and target scenes are disjoint."""
    for domain, style in STYLES.items():
        _write_ade(osp.join(root, domain),
                   lambda s, i, d=domain, st=style: render_scene(_rng('uda', s, i, zlib_crc(d)), s,
                                                                  style=st),
                   SIZES['uda'])


def _rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_util
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode()
    return rle


def _bbox(mask: np.ndarray) -> List[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
            float(ys.max() - ys.min() + 1)]


def write_coco(root: str) -> None:
    """Instance (RLE) and panoptic annotations of the same scenes. Category id = class index + 1."""
    categories = [dict(id=k + 1, name=c, supercategory='digit' if c in THING_CLASSES else 'stuff',
                       isthing=int(c in THING_CLASSES)) for k, c in enumerate(CLASSES)]
    for split, n in SIZES['coco'].items():
        images, instances, panoptic = [], [], []
        for i in range(n):
            scene = render_scene(_rng('coco', split, i), split)
            h, w = scene.semantic.shape
            name = f'toy_{split}_{i:05d}'
            _imwrite(osp.join(root, split, name + '.jpg'), scene.image)
            images.append(dict(id=i, file_name=name + '.jpg', height=h, width=w))
            seg_ids = np.zeros((h, w), np.int64)  # 0 = VOID
            segments = []
            for label in range(len(THING_CLASSES), len(CLASSES)):  # stuff first, things on top
                m = scene.semantic == label
                if m.any():
                    segments.append((label, m))
            for inst in scene.instances:
                segments.append((inst.label, inst.mask))
                instances.append(dict(id=len(instances) + 1, image_id=i, category_id=inst.label + 1,
                                      segmentation=_rle(inst.mask), area=float(inst.mask.sum()),
                                      bbox=_bbox(inst.mask), iscrowd=0))
            infos = []
            for k, (label, m) in enumerate(segments):
                seg_ids[m] = k + 1
                infos.append(dict(id=k + 1, category_id=label + 1, iscrowd=0,
                                  area=int(m.sum()), bbox=_bbox(m)))
            rgb = np.stack([seg_ids % 256, seg_ids // 256 % 256, seg_ids // 65536], -1)
            _imwrite(osp.join(root, 'annotations', f'panoptic_{split}', name + '.png'),
                     rgb[..., ::-1].astype(np.uint8))  # OpenCV writes BGR
            panoptic.append(dict(image_id=i, file_name=name + '.png', segments_info=infos))
        os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
        with open(osp.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=instances,
                           categories=[c for c in categories if c['isthing']]), f)
        with open(osp.join(root, 'annotations', f'panoptic_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=panoptic, categories=categories), f)


def write_nyu(root: str) -> None:
    """NYU-v2 layout. Depth: uint16 PNG in millimetres, at most 10 m (the sky, and the ground just
    below the horizon, which is clamped there and so reads as a fronto-parallel band). Normals:
    uint8 PNG, ``(n + 1) / 2 * 255`` in camera (x right, y down, z forward) order stored as RGB,
    all-zero where undefined (sky). Semantics: uint8 class index, 255 unlabelled. File names carry
    NYU's scene category prefix."""
    for split, n in SIZES['nyu'].items():
        for i in range(n):
            scene = render_scene(_rng('nyu', split, i), split)
            name = f'playroom_{i:05d}'
            _imwrite(osp.join(root, 'images', split, name + '.jpg'), scene.image)
            _imwrite(osp.join(root, 'annotations', split, name + '.png'),
                     np.round(scene.depth * 1000).astype(np.uint16))
            valid = np.linalg.norm(scene.normals, axis=-1, keepdims=True) > 0.5
            enc = np.where(valid, np.round((scene.normals + 1) / 2 * 255), 0).astype(np.uint8)
            _imwrite(osp.join(root, 'normals', split, name + '.png'), enc[..., ::-1])
            _imwrite(osp.join(root, 'semantic', split, name + '.png'), scene.semantic)


def write_seq(root: str, style: Style = SOURCE) -> None:
    """Short clips: 1-2 digits moving at constant velocity, bouncing off the borders."""
    size = 64
    for split, n in SIZES['seq'].items():
        meta = []
        for q in range(n):
            rng = _rng('seq', split, q)
            digits = []
            for _ in range(int(rng.integers(1, 3))):
                s = int(rng.integers(18, 28))
                pos = rng.uniform(0, size - s, 2)
                vel = rng.uniform(2, 5, 2) * rng.choice([-1, 1], 2)
                digits.append([int(rng.choice(digit_pool(split))), s, pos, vel])
            frames = []
            for t in range(SEQ_LEN):
                layout = [(g, s, int(p[0]), int(p[1])) for g, s, p, _ in digits]
                # A per-clip background seed keeps the scenery still while the digits move.
                scene = render_scene(_rng('seq', split, q, extra=1), split, size, style,
                                     digits=layout)
                path = osp.join(split, f'{q:04d}', f'{t:02d}.png')
                _imwrite(osp.join(root, path), scene.image)
                frames.append(dict(path=path, boxes=[[l, tp, s, s] for _, s, tp, l in layout]))
                for d in digits:  # move and bounce
                    d[2] = d[2] + d[3]
                    for ax in range(2):
                        if not 0 <= d[2][ax] <= size - d[1]:
                            d[3][ax] = -d[3][ax]
                            d[2][ax] = float(np.clip(d[2][ax], 0, size - d[1]))
            meta.append(dict(id=q, labels=[digit_label(g) for g, *_ in digits],
                             frames=frames))
        with open(osp.join(root, f'{split}.json'), 'w') as f:
            json.dump(dict(sequence_length=SEQ_LEN, sequences=meta), f)


WRITERS: Dict[str, Callable[[str], None]] = {
    'cls': write_cls, 'seg': write_seg, 'coco': write_coco, 'nyu': write_nyu, 'uda': write_uda,
    'seq': write_seq,
}
