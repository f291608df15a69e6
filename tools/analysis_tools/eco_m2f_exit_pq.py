"""ECO-M2F step B: per-image PQ at every encoder exit → the derived dataset (arXiv 2404.15244).

    python tools/analysis_tools/eco_m2f_exit_pq.py CONFIG CHECKPOINT --out derived.json
        [--split train|val|test] [--num-images N] [--exits 2 3 4 5 6] [--cfg-options ...]

CONFIG/CHECKPOINT: a step-A model (``mmmask.ECOMask2Former`` with an
``EarlyExitMSDeformAttnPixelDecoder``). Every image of the split (by default the *training* split,
read with the test pipeline, unfiltered) is segmented once per fixed exit ``k`` and scored with
mmdet's panoptic evaluation (``CocoPanopticMetric`` → ``pq_compute_single_core`` per image);
``q_k`` is that image's PQ (a fraction in [0, 1], averaged over the categories present in its
ground truth or prediction, as the official derived dataset). An image with neither ground truth
nor prediction scores 1.

The output JSON (read by ``mmmask.LoadExitUtilities`` for step C)::

    {"meta": {"config": ..., "checkpoint": ..., "split": ..., "exits": [2, ..., 6]},
     "utilities": {"<img_id>": [q_2, ..., q_6]}, "file_names": {"<img_id>": "<file stem>"},
     "summary": {"PQ": {"2": dataset PQ at exit 2 (%), ...}, "mean_image_pq": {...},
                 "best_exit_counts": {...}}}

Changing β only needs step C again; a new step-A model needs this step again.
"""
import argparse
import copy
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='ECO-M2F step B: per-image PQ at every exit')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='derived dataset (JSON) to write')
    parser.add_argument('--split', default='train', choices=['train', 'val', 'test'],
                        help='dataset split (default: train, as the paper)')
    parser.add_argument('--num-images', type=int, default=None, help='only the first N images')
    parser.add_argument('--exits', type=int, nargs='+', default=None,
                        help='exits to evaluate (default: all of the model, e.g. 2..6)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args()


def split_loader_cfg(cfg: Config, split: str, num_images=None) -> dict:
    """The split's dataloader config, with the test pipeline, batch 1, in order, unfiltered."""
    loader = copy.deepcopy(cfg.get(f'{split}_dataloader'))
    if not loader:
        raise ValueError(f'{split}_dataloader is missing from the config')
    test_pipeline = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
    dataset = loader['dataset']
    if 'ann_file' not in dataset:
        raise ValueError(f'{split}_dataloader.dataset ({dataset.get("type")}) is a wrapper: '
                         'point --split at a plain CocoPanopticDataset (or mmmask.ToyData) config')
    dataset['pipeline'] = test_pipeline
    dataset['test_mode'] = True  # no filtering: every image gets utilities
    if num_images:
        dataset['indices'] = num_images
    loader.update(batch_size=1, num_workers=0, persistent_workers=False,
                  sampler=dict(type='DefaultSampler', shuffle=False))
    loader.pop('batch_sampler', None)
    return loader


def image_pq(pq_stat, categories) -> float:
    """PQ of one image's ``PQStat`` (fraction); 1.0 when nothing is there to match."""
    if not any(pq_stat[c].tp + pq_stat[c].fp + pq_stat[c].fn > 0 for c in categories):
        return 1.0
    return float(pq_stat.pq_average(categories, isthing=None)[0]['pq'])


def main() -> int:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    from mmdet.evaluation.functional.panoptic_utils import PQStat
    from mmdet.registry import METRICS, MODELS

    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu')
    model.to(args.device).eval()
    decoder = getattr(model, 'pixel_decoder', None)
    if decoder is None or not hasattr(decoder, 'set_exit_mode'):
        print('eco_m2f_exit_pq: the model has no early-exit pixel decoder: use a config with '
              "type='mmmask.ECOMask2Former'", file=sys.stderr)
        return 2
    exits = args.exits or list(decoder.exits)
    for k in exits:
        decoder._check_exit(k)

    loader = Runner.build_dataloader(split_loader_cfg(cfg, args.split, args.num_images))
    dataset = loader.dataset
    metrics = {}
    for k in exits:
        metric = METRICS.build(dict(type='CocoPanopticMetric', ann_file=dataset.ann_file,
                                    seg_prefix=dataset.data_prefix['seg']))
        metric.dataset_meta = dataset.metainfo
        metrics[k] = metric

    utilities: Dict[str, List[float]] = {}
    file_names: Dict[str, str] = {}
    start = time.time()
    old_mode, old_fixed = decoder.exit_mode, decoder.fixed_exit
    try:
        with torch.no_grad():
            for i, data in enumerate(loader):
                row = []
                for k in exits:
                    decoder.set_exit_mode('fixed', k)
                    outputs = model.test_step(data)
                    metric = metrics[k]
                    metric.process(data, [o.to_dict() for o in outputs])
                    row.append(image_pq(metric.results[-1], metric.categories))
                meta = data['data_samples'][0].metainfo
                key = str(meta['img_id'])
                utilities[key] = row
                file_names[key] = osp.splitext(osp.basename(meta['img_path']))[0]
                if (i + 1) % 50 == 0:
                    print(f'{i + 1}/{len(loader)} images, {time.time() - start:.0f} s', flush=True)
    finally:
        decoder.exit_mode, decoder.fixed_exit = old_mode, old_fixed

    summary = {'PQ': {}, 'mean_image_pq': {}, 'best_exit_counts': {str(k): 0 for k in exits}}
    for j, k in enumerate(exits):
        metric = metrics[k]
        total = PQStat()
        for r in metric.results:
            total += r
        summary['PQ'][str(k)] = 100 * float(total.pq_average(metric.categories, None)[0]['pq'])
        summary['mean_image_pq'][str(k)] = 100 * sum(r[j] for r in utilities.values()) / max(
            len(utilities), 1)
    for row in utilities.values():
        summary['best_exit_counts'][str(exits[max(range(len(row)), key=lambda j: row[j])])] += 1
    out = dict(meta=dict(config=osp.abspath(args.config), checkpoint=osp.abspath(args.checkpoint),
                         split=args.split, exits=exits, metric='per-image PQ (fraction)',
                         num_images=len(utilities)),
               utilities=utilities, file_names=file_names, summary=summary)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(out, f)
    print('exit  dataset PQ  mean per-image PQ  images best here')
    for k in exits:
        print(f'{k:>4}  {summary["PQ"][str(k)]:10.2f}  {summary["mean_image_pq"][str(k)]:17.2f}  '
              f'{summary["best_exit_counts"][str(k)]:>16}')
    print(f'Derived dataset: {len(utilities)} images x {len(exits)} exits -> {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
