"""Training-step time of self-supervised objectives against their closest mmpretrain baseline,
measured in one process, interleaved, so machine load hits every config alike.

    python tools/analysis_tools/benchmark_selfsup.py [CONFIG[@BASELINE] ...] [--suite mim|contrastive]
        [--reference CFG] [--batch-size 64] [--rounds 5] [--iters 10] [--warmup 3] [--device cpu]
        [--fp32] [--out table.md]

Suites (used when no CONFIG is given):
- ``mim`` (default): every `configs/{hpm,gmml,maskalign,mto,cmae,hi_end_mae}/*toy-pretrain.py`
  against `configs/quickstart/mae_vit-tiny-p8_1xb64-60e_toy-pretrain.py` (same ViT, same mask ratio).
- ``contrastive``: the toy configs of issue 9's objectives, each against the toy config of its
  closest mmpretrain algorithm (`SUITES['contrastive']`: PixPro vs BYOL, Hallucinator vs MoCo v2,
  MCL vs SimCLR, TOV-VICReg vs Barlow Twins, Hybrid Distillation vs MaskAlign-style distillation).
A CONFIG may name its own baseline as ``CONFIG@BASELINE``; otherwise ``--reference`` (default: the
MAE toy config) is the baseline. For paper-scale comparisons pass the paper configs, e.g.
``hpm.py@mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-800e_in1k.py`` (a ``package::path``
names a config shipped with an installed OpenMMLab package), `--fp32` to time every config with
the same plain optimizer wrapper, and `--device cuda` where there is a GPU.

A step is `model.train_step` (data preprocessing, masking, teachers, forward, backward, optimizer
update) on a fixed batch made by the config's own training pipeline (its loading transforms
replaced by random uint8 images, so crops, views, coordinates and extra frames are what training
sees, without the dataset). Each round times `--iters` steps of every config in turn; the table
reports the median step over rounds and the ratio to each config's baseline.
"""
import argparse
import copy
import glob
import importlib
import os.path as osp
import statistics
import sys
import time
from typing import Dict, List, Tuple

import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import FUNCTIONS, init_default_scope

import mmmask  # noqa: F401
from mmmask.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
REFERENCE = osp.join(REPO, 'configs/quickstart/mae_vit-tiny-p8_1xb64-60e_toy-pretrain.py')
MIM_METHODS = ('hpm', 'gmml', 'maskalign', 'mto', 'cmae', 'hi_end_mae')
#: method folder -> (toy config glob, its closest mmpretrain baseline's toy config)
CONTRASTIVE: Dict[str, Tuple[str, str]] = {
    'pixpro': ('configs/pixpro/pixpro_*toy-pretrain.py',
               'configs/pixpro/byol_resnet18-c16_1xb32-4e_toy-pretrain.py'),
    'hallucinator': ('configs/hallucinator/hallucinator-mocov2_*toy-pretrain.py',
                     'configs/hallucinator/mocov2_resnet18-c16_1xb64-6e_toy-pretrain.py'),
    'tov_vicreg': ('configs/tov_vicreg/tov-vicreg_*toy-pretrain.py',
                   'configs/tov_vicreg/barlowtwins_vit-tiny-p8_1xb64-30e_toy-pretrain.py'),
}


def resolve(path: str) -> str:
    """``mmpretrain::mae/x.py`` → the config file shipped inside the installed package."""
    if '::' not in path:
        return path
    package, rel = path.split('::', 1)
    module = importlib.import_module(package)
    return osp.join(osp.dirname(module.__file__), '.mim', 'configs', rel)


def _source_keys(transforms: List[dict]) -> List[str]:
    """Extra image keys that multi-view wrappers read (e.g. neighbouring frames)."""
    keys = []
    for t in transforms:
        keys += [k for k in (t.get('sources') or []) if k]
    return keys


def make_batch(cfg: Config, batch_size: int, seed: int = 0) -> Tuple[dict, int, int]:
    """A training batch from the config's own pipeline on random images (no dataset needed).

    The leading ``Load*`` transforms are replaced by random uint8 images (256 px, or twice the
    crop size); returns (collated batch, number of views, view size)."""
    pipeline = list(cfg.train_dataloader.dataset.get('pipeline', []))
    while pipeline and 'Load' in pipeline[0].get('type', ''):
        pipeline.pop(0)
    transforms = Compose(copy.deepcopy(pipeline))
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(batch_size):
        results = dict(img=rng.integers(0, 256, (256, 256, 3), dtype=np.uint8), gt_label=0,
                       img_path='', sample_idx=0)
        for key in _source_keys(pipeline):
            results[key] = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
        results['img_shape'] = results['ori_shape'] = (256, 256)
        samples.append(transforms(results))
    collate = cfg.train_dataloader.get('collate_fn', dict(type='default_collate'))
    batch = FUNCTIONS.get(collate['type'])(samples)
    inputs = batch['inputs']
    views = len(inputs) if isinstance(inputs, (list, tuple)) else 1
    first = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
    return batch, views, int(first.shape[-1])


def prepare(path: str, batch_size: int, device: str, fp32: bool = False) -> dict:
    cfg = Config.fromfile(resolve(path))
    if fp32 and 'Amp' in cfg.optim_wrapper.get('type', ''):
        cfg.optim_wrapper.type = 'OptimWrapper'
        for key in ('loss_scale', 'dtype'):
            cfg.optim_wrapper.pop(key, None)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model_cfg = cfg.model.copy()
    model_cfg.pop('init_cfg', None)
    model = MODELS.build(model_cfg).to(device).train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    data, views, size = make_batch(cfg, batch_size)
    return dict(name=osp.splitext(osp.basename(path))[0], model=model, optim=optim_wrapper,
                data=data, views=views, size=size, times=[])


def run_steps(entry, n: int, device: str) -> float:
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(n):
        entry['model'].train_step(entry['data'], entry['optim'])
    sync()
    return (time.perf_counter() - t0) / n


def suite_pairs(suite: str) -> List[Tuple[str, str]]:
    """(config, baseline) pairs of a named suite."""
    if suite == 'mim':
        return [(p, REFERENCE) for m in MIM_METHODS
                for p in sorted(glob.glob(osp.join(REPO, 'configs', m, '*toy-pretrain.py')))]
    if suite == 'contrastive':
        pairs = []
        for pattern, baseline in CONTRASTIVE.values():
            pairs += [(p, osp.join(REPO, baseline))
                      for p in sorted(glob.glob(osp.join(REPO, pattern)))]
        return pairs
    raise ValueError(f"unknown suite {suite!r}; use 'mim' or 'contrastive'")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='*', help='CONFIG or CONFIG@BASELINE')
    parser.add_argument('--suite', default='mim', choices=('mim', 'contrastive'))
    parser.add_argument('--reference', default=REFERENCE,
                        help='baseline of the CONFIGs that name none')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--fp32', action='store_true',
                        help='replace AmpOptimWrapper by OptimWrapper in every config')
    parser.add_argument('--out', help='also write the markdown table here')
    args = parser.parse_args()
    if args.configs:
        pairs = [tuple(c.split('@', 1)) if '@' in c else (c, args.reference)
                 for c in args.configs]
    else:
        pairs = suite_pairs(args.suite)
    if not pairs:
        print('no configs to benchmark', file=sys.stderr)
        return 2
    hub = MessageHub.get_current_instance()
    for key, value in (('epoch', 0), ('max_epochs', 1), ('iter', 0), ('max_iters', 1000)):
        hub.update_info(key, value)
    torch.manual_seed(0)
    order = []  # every distinct config once, baselines first in order of appearance
    for cfg, base in pairs:
        for p in (base, cfg):
            if p not in order:
                order.append(p)
    entries = {p: prepare(p, args.batch_size, args.device, args.fp32) for p in order}
    for e in entries.values():
        run_steps(e, args.warmup, args.device)
    for _ in range(args.rounds):
        for e in entries.values():
            e['times'].append(run_steps(e, args.iters, args.device))
    med = {p: statistics.median(e['times']) for p, e in entries.items()}
    lines = [f'device {args.device}, {torch.get_num_threads()} threads, batch {args.batch_size}, '
             f'{args.rounds} rounds x {args.iters} steps (median)', '',
             '| config | views x size | ms / step | baseline | × baseline |',
             '|---|---|---|---|---|']
    baselines = []
    for _, base in pairs:
        if base not in baselines:
            baselines.append(base)
    for base in baselines:
        e = entries[base]
        lines.append(f"| {e['name']} | {e['views']} x {e['size']} | {1e3 * med[base]:.1f} | "
                     f'(baseline) | 1.00 |')
        for cfg, b in pairs:
            if b != base:
                continue
            e = entries[cfg]
            lines.append(f"| {e['name']} | {e['views']} x {e['size']} | {1e3 * med[cfg]:.1f} | "
                         f"{entries[base]['name']} | {med[cfg] / med[base]:.2f} |")
    table = '\n'.join(lines)
    print(table)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
