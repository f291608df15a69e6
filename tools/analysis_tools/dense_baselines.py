"""Trivial baselines for dense prediction, scored with a config's own test evaluator.

    python tools/analysis_tools/dense_baselines.py CONFIG [--cfg-options ...]

Statistics come from the *training* split (read with the test pipeline): the mean valid depth,
the normalised mean valid surface normal and the most frequent labelled class. Every test image
is then "predicted" as that constant (depth map, normal map, or all-majority-class segmentation)
and scored with ``test_evaluator``, so a trained model's ``Test metrics:`` line can be compared
with the constant one printed here (``Baseline metrics: name=value, ...``). Used for PolyMaX's
toy evidence (configs/polymax/README.md) and its learning test.
"""
import argparse
import copy
import numbers
from typing import Dict

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config, DictAction
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmengine.runner import Runner


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='constant-prediction baselines for dense tasks')
    parser.add_argument('config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args()


def _loader(cfg: Config, split: str):
    loader = copy.deepcopy(cfg.get(f'{split}_dataloader'))
    loader['dataset']['pipeline'] = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
    loader.update(batch_size=1, num_workers=0, persistent_workers=False,
                  sampler=dict(type='DefaultSampler', shuffle=False))
    loader['dataset'].pop('test_mode', None)
    return Runner.build_dataloader(loader)


def train_statistics(cfg: Config) -> Dict[str, torch.Tensor]:
    """Mean depth, mean normal and per-class pixel counts over the training split."""
    depth_sum, depth_n = 0.0, 0
    normal_sum = torch.zeros(3, dtype=torch.float64)
    class_counts = None
    for batch in _loader(cfg, 'train'):
        sample = batch['data_samples'][0]
        if 'gt_depth_map' in sample:
            d = sample.gt_depth_map.data.double()
            depth_sum += d[d > 0].sum().item()
            depth_n += int((d > 0).sum())
        if 'gt_normal_map' in sample:
            n = sample.gt_normal_map.data.double().flatten(1)
            normal_sum += n[:, n.norm(dim=0) > 0.5].sum(dim=1)
        if 'gt_sem_seg' in sample:
            s = sample.gt_sem_seg.data.flatten()
            counts = torch.bincount(s[s != 255].long(), minlength=256)
            class_counts = counts if class_counts is None else class_counts + counts
    stats = {}
    if depth_n:
        stats['depth'] = torch.tensor(depth_sum / depth_n)
    if normal_sum.norm() > 0:
        stats['normal'] = F.normalize(normal_sum, dim=0).float()
    if class_counts is not None:
        stats['class'] = class_counts.argmax()
    return stats


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import mmmask.datasets  # noqa: F401  (registers the datasets, transforms and metrics)
    import mmmask.evaluation  # noqa: F401
    stats = train_statistics(cfg)
    print('Training-split statistics: ' + ', '.join(
        f'{k}={v.tolist()}' for k, v in stats.items()), flush=True)
    evaluator = Evaluator(cfg.test_evaluator)
    test_loader = _loader(cfg, 'test')
    evaluator.dataset_meta = test_loader.dataset.metainfo
    num_classes = len(test_loader.dataset.metainfo.get('classes', [])) or 1
    for batch in test_loader:
        sample = batch['data_samples'][0]
        h, w = sample.ori_shape[:2]
        if 'depth' in stats:
            sample.pred_depth_map = PixelData(data=torch.full((1, h, w), float(stats['depth'])))
        if 'normal' in stats:
            sample.pred_normal_map = PixelData(
                data=stats['normal'].view(3, 1, 1).expand(3, h, w).clone())
        if 'class' in stats:
            sample.pred_sem_seg = PixelData(data=torch.full((1, h, w), int(stats['class'])))
            logits = torch.zeros(num_classes, h, w)
            logits[int(stats['class'])] = 1
            sample.seg_logits = PixelData(data=logits)
        evaluator.process(data_samples=[sample.to_dict()], data_batch=batch)
    metrics = evaluator.evaluate(len(test_loader.dataset))
    print('Baseline metrics: ' + ', '.join(f'{k}={float(v):.4f}' for k, v in metrics.items()
                                           if isinstance(v, (numbers.Number, np.generic))),
          flush=True)


if __name__ == '__main__':
    main()
