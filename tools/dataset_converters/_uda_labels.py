"""Shared part of the GTA5 / SYNTHIA converters (``gta.py``, ``synthia.py``): map raw class ids to
the 19 Cityscapes trainIds (255 = ignore), write ``<name>_labelTrainIds.png`` beside each raw
label, and record per-image class pixel counts for rare class sampling.

Statistics files written to the output folder (DAFormer's layout; ``file`` is the trainId label's
path relative to the dataset root, so its basename matches the dataset's ``seg_map_path``)::

    sample_class_stats.json       [{"file": "labels/00001_labelTrainIds.png", "0": 1234, ...}, ...]
    sample_class_stats_dict.json  {"labels/00001_labelTrainIds.png": {"0": 1234, ...}, ...}
    samples_with_class.json       {"0": [["labels/00001_labelTrainIds.png", 1234], ...], ...}

Class ids are JSON strings; classes absent from an image are left out.
"""
import json
import os
import os.path as osp
from functools import partial
from typing import Callable, Dict, List

import numpy as np
from PIL import Image

TRAIN_ID_SUFFIX = '_labelTrainIds.png'
IGNORE = 255
NUM_CLASSES = 19


def lookup_table(id_to_train_id: Dict[int, int], size: int) -> np.ndarray:
    """uint8 table of ``size`` entries: raw id -> trainId, everything unmapped -> 255."""
    table = np.full(size, IGNORE, dtype=np.uint8)
    for raw, train in id_to_train_id.items():
        table[raw] = train
    return table


def find_raw_labels(gt_dir: str) -> List[str]:
    """Sorted raw label PNGs under ``gt_dir`` (recursive), converted outputs excluded."""
    found = []
    for root, _, names in os.walk(gt_dir):
        found += [osp.join(root, n) for n in names
                  if n.endswith('.png') and not n.endswith(TRAIN_ID_SUFFIX)]
    return sorted(found)


def convert_one(path: str, read_ids: Callable[[str], np.ndarray], table: np.ndarray,
                data_root: str) -> dict:
    """Write the trainId PNG of one raw label; return its class stats (with ``file``)."""
    ids = read_ids(path)
    train_ids = table[np.clip(ids, 0, len(table) - 1).astype(np.int64)]
    train_ids[(ids < 0) | (ids >= len(table))] = IGNORE
    out_path = path[:-len('.png')] + TRAIN_ID_SUFFIX
    Image.fromarray(train_ids).save(out_path)  # uint8 2-D: mode L
    counts = np.bincount(train_ids.ravel(), minlength=256)[:NUM_CLASSES]
    stats = {int(c): int(n) for c, n in enumerate(counts) if n > 0}
    stats['file'] = osp.relpath(out_path, data_root)
    return stats


def convert_all(data_root: str, gt_dir: str, out_dir: str, read_ids: Callable, table: np.ndarray,
                nproc: int = 1) -> List[dict]:
    """Convert every raw label under ``data_root/gt_dir`` and write the statistics files."""
    files = find_raw_labels(osp.join(data_root, gt_dir))
    if not files:
        raise FileNotFoundError(f'no raw *.png labels under {osp.join(data_root, gt_dir)}')
    job = partial(convert_one, read_ids=read_ids, table=table, data_root=data_root)
    if nproc > 1:
        from mmengine.utils import track_parallel_progress
        stats = track_parallel_progress(job, files, nproc)
    else:
        from mmengine.utils import track_progress
        stats = track_progress(job, files)
    save_class_stats(out_dir, stats)
    return stats


def save_class_stats(out_dir: str, sample_class_stats: List[dict]) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'sample_class_stats.json'), 'w') as f:
        json.dump(sample_class_stats, f, indent=2)
    by_file = {}
    for s in sample_class_stats:
        s = dict(s)
        by_file[s.pop('file')] = s
    with open(osp.join(out_dir, 'sample_class_stats_dict.json'), 'w') as f:
        json.dump(by_file, f, indent=2)
    with_class: Dict[int, list] = {}
    for file, s in by_file.items():
        for c, n in s.items():
            with_class.setdefault(c, []).append((file, n))
    with open(osp.join(out_dir, 'samples_with_class.json'), 'w') as f:
        json.dump(with_class, f, indent=2)
