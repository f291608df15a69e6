"""``mmmask.UDADataset``: source/target pairs for unsupervised domain adaptation, with DAFormer's
rare class sampling (RCS).

Each item is ``dict(inputs=..., data_samples=..., target_inputs=..., target_data_samples=...)``:
the packed outputs (``PackSegInputs``) of one source sample and one random target sample. mmengine's
default ``pseudo_collate`` turns a list of them into a dict of four lists, which
``mmmask.UDASegDataPreProcessor`` batches; no custom collate function is needed.
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
from mmengine.logging import print_log

from ..registry import DATASETS, TRANSFORMS

__all__ = ['UDADataset', 'rcs_class_probs', 'sample_class_stats']


def rcs_class_probs(class_pixels: Dict[int, int], temperature: float) -> Tuple[List[int],
                                                                             np.ndarray]:
    """DAFormer's RCS distribution: ``softmax((1 - f_c) / T)`` over the classes' pixel shares
    ``f_c``; classes sorted from rarest to most frequent."""
    items = sorted(class_pixels.items(), key=lambda kv: kv[1])
    classes = [int(c) for c, _ in items]
    freq = np.array([n for _, n in items], dtype=np.float64)
    freq = 1.0 - freq / freq.sum()
    logits = freq / temperature
    probs = np.exp(logits - logits.max())
    return classes, probs / probs.sum()


def sample_class_stats(dataset, ann_loader: Optional[dict] = None,
                       ignore_index: int = 255) -> List[Dict[str, int]]:
    """Pixels per class of every sample's full label map: ``[{'file': seg_map_path, '<c>': n}]``
    (DAFormer's ``sample_class_stats.json`` format). Labels are read with ``ann_loader``
    (default mmseg ``LoadAnnotations``, honouring each sample's ``reduce_zero_label`` and
    ``label_map``), not through the training pipeline, so random crops do not affect them."""
    loader = TRANSFORMS.build(ann_loader or dict(type='mmseg.LoadAnnotations'))
    stats = []
    for i in range(len(dataset)):
        info = dict(dataset.get_data_info(i))
        info.setdefault('seg_fields', [])
        gt = loader(info)['gt_seg_map']
        values, counts = np.unique(gt, return_counts=True)
        row = {'file': info['seg_map_path']}
        row.update({str(int(v)): int(n) for v, n in zip(values, counts) if v != ignore_index})
        stats.append(row)
    return stats


@DATASETS.register_module()
class UDADataset:
    """A labelled source and an unlabelled target dataset.

    Args:
        source / target: dataset configs (built with mmmask's ``DATASETS``, so use scope prefixes
            such as ``mmseg.CityscapesDataset`` or ``mmmask.ToyData``) or dataset objects.
        rare_class_sampling: None, or ``dict(class_temp=0.01, min_crop_ratio=0.5,
            min_pixels=3000)`` plus optionally ``stats_file`` (a ``sample_class_stats.json``
            to read, or to write after computing it) and ``ann_loader`` (the transform that
            loads a label map for the statistics).

    Without RCS item ``i`` is source sample ``i`` and a uniformly random target sample (the length
    is the source's). With RCS every item ignores ``i``: a class ``c`` is drawn from the RCS
    distribution, then a source sample with more than ``min_pixels`` pixels of ``c``; the sample
    (i.e. its random crop) is redrawn up to 10 times until the crop has more than
    ``min_pixels * min_crop_ratio`` pixels of ``c``.
    """

    def __init__(self, source, target, rare_class_sampling: Optional[dict] = None,
                 lazy_init: bool = False) -> None:
        self.source = DATASETS.build(source) if isinstance(source, dict) else source
        self.target = DATASETS.build(target) if isinstance(target, dict) else target
        src_classes = self.source.metainfo.get('classes')
        tgt_classes = self.target.metainfo.get('classes')
        if src_classes is not None and tgt_classes is not None and \
                tuple(src_classes) != tuple(tgt_classes):
            raise ValueError(f'source and target classes differ: {src_classes} vs {tgt_classes}')
        self.rcs = None
        if rare_class_sampling is not None:
            self._init_rcs(**rare_class_sampling)

    @property
    def metainfo(self) -> dict:
        return self.source.metainfo

    def _init_rcs(self, class_temp: float = 0.01, min_crop_ratio: float = 0.5,
                  min_pixels: int = 3000, stats_file: Optional[str] = None,
                  ann_loader: Optional[dict] = None) -> None:
        ignore_index = self.source.metainfo.get('ignore_index', 255) if hasattr(
            self.source, 'metainfo') else 255
        ignore_index = getattr(self.source, 'ignore_index', ignore_index)
        if stats_file and osp.isfile(stats_file):
            with open(stats_file) as f:
                stats = json.load(f)
        else:
            stats = sample_class_stats(self.source, ann_loader, ignore_index)
            if stats_file:
                with open(stats_file, 'w') as f:
                    json.dump(stats, f)
        # a stats file names each label by its path, its path relative to the source data_root
        # (DAFormer's and tools/dataset_converters' layout) or its file name
        root = getattr(self.source, 'data_root', None) or ''
        file_to_idx = {}
        for i in range(len(self.source)):
            path = self.source.get_data_info(i)['seg_map_path']
            file_to_idx[path] = i
            if root:
                file_to_idx.setdefault(osp.relpath(path, root), i)
            file_to_idx.setdefault(osp.basename(path), i)
        totals: Dict[int, int] = {}
        samples: Dict[int, List[int]] = {}
        for row in stats:
            idx = file_to_idx.get(row['file'], file_to_idx.get(osp.basename(row['file'])))
            if idx is None:
                raise KeyError(f'RCS statistics name {row["file"]}, which the source dataset '
                               f'does not have: delete the stale stats file {stats_file}')
            for c, n in row.items():
                if c == 'file':
                    continue
                totals[int(c)] = totals.get(int(c), 0) + n
                if n > min_pixels:
                    samples.setdefault(int(c), []).append(idx)
        classes, probs = rcs_class_probs(totals, class_temp)
        # DAFormer asserts every class has a sample above min_pixels; here such classes are
        # dropped and the distribution renormalised.
        keep = [k for k, c in enumerate(classes) if samples.get(c)]
        if not keep:
            raise ValueError(f'RCS: no source sample has more than min_pixels={min_pixels} '
                             f'pixels of any class')
        dropped = [classes[k] for k in range(len(classes)) if k not in keep]
        if dropped:
            print_log(f'RCS: classes {dropped} have no sample above {min_pixels} pixels and are '
                      f'never sampled', logger='current')
        probs = probs[keep] / probs[keep].sum()
        classes = [classes[k] for k in keep]
        print_log(f'RCS classes {classes}, probabilities {np.round(probs, 4).tolist()}',
                  logger='current')
        self.rcs = dict(classes=classes, probs=probs, samples=samples,
                        min_crop_ratio=min_crop_ratio, min_pixels=min_pixels)

    def __len__(self) -> int:
        return len(self.source)

    def _rare_class_sample(self) -> dict:
        rcs = self.rcs
        c = int(np.random.choice(rcs['classes'], p=rcs['probs']))
        idx = int(np.random.choice(rcs['samples'][c]))
        sample = self.source[idx]
        if rcs['min_crop_ratio'] > 0:
            for _ in range(10):
                n = int((sample['data_samples'].gt_sem_seg.data == c).sum())
                if n > rcs['min_pixels'] * rcs['min_crop_ratio']:
                    break
                sample = self.source[idx]
        return sample

    def __getitem__(self, idx: int) -> dict:
        source = self._rare_class_sample() if self.rcs is not None else self.source[idx]
        target = self.target[int(np.random.randint(len(self.target)))]
        return dict(inputs=source['inputs'], data_samples=source['data_samples'],
                    target_inputs=target['inputs'], target_data_samples=target['data_samples'])
