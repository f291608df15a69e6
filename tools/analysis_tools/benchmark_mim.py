"""Training-step time of masked-image-modeling objectives against a reference (mmpretrain MAE),
measured in one process, interleaved, so machine load hits every config alike.

    python tools/analysis_tools/benchmark_mim.py [CONFIG ...] [--reference CFG] [--batch-size 64]
        [--rounds 5] [--iters 10] [--warmup 3] [--device cpu] [--out table.md]

Without CONFIGs it times every `configs/{hpm,gmml,maskalign,mto,cmae,hi_end_mae}/*toy-pretrain.py`
against `configs/quickstart/mae_vit-tiny-p8_1xb64-60e_toy-pretrain.py` (same ViT, same mask ratio).
For the paper-scale comparison pass the ViT-B configs with
`--reference mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-800e_in1k.py` (a `package::path`
names a config shipped with an installed OpenMMLab package), `--fp32` to time every config with
the same plain optimizer wrapper, and `--device cuda` where there is a GPU. A step is
`model.train_step` (data preprocessing, masking, teachers, forward, backward, optimizer update)
on a fixed synthetic uint8 batch with the config's number of views and image size. Each round
times `--iters` steps of every config in turn; the table reports the median step over rounds and
the ratio to the reference.
"""
import argparse
import glob
import importlib
import os.path as osp
import statistics
import sys
import time

import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

import mmmask  # noqa: F401
from mmmask.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
REFERENCE = osp.join(REPO, 'configs/quickstart/mae_vit-tiny-p8_1xb64-60e_toy-pretrain.py')
METHODS = ('hpm', 'gmml', 'maskalign', 'mto', 'cmae', 'hi_end_mae')


def pipeline_geometry(cfg: Config):
    """(number of views, image size) from the training pipeline (MultiView / RandomResizedCrop)."""
    def walk(transforms):
        views, size = 1, None
        for t in transforms:
            if t.get('type', '').endswith('MultiView'):
                n = t.get('num_views', 1)
                views = sum(n) if isinstance(n, (list, tuple)) else n
                sub = t.get('transforms', [])
                sub = sub[0] if sub and isinstance(sub[0], (list, tuple)) else sub
                size = size or walk(sub)[1]
            elif 'scale' in t and t.get('type', '').endswith('RandomResizedCrop'):
                s = t['scale']
                size = size or (s if isinstance(s, int) else s[0])
        return views, size
    views, size = walk(cfg.train_dataloader.dataset.get('pipeline', []))
    return views, size or 224


def resolve(path: str) -> str:
    """``mmpretrain::mae/x.py`` → the config file shipped inside the installed package."""
    if '::' not in path:
        return path
    package, rel = path.split('::', 1)
    module = importlib.import_module(package)
    return osp.join(osp.dirname(module.__file__), '.mim', 'configs', rel)


def prepare(path: str, batch_size: int, device: str, fp32: bool = False):
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
    views, size = pipeline_geometry(cfg)
    gen = torch.Generator().manual_seed(0)
    imgs = [torch.randint(0, 256, (batch_size, 3, size, size), generator=gen, dtype=torch.uint8)
            for _ in range(views)]
    data = dict(inputs=imgs if views > 1 else imgs[0],
                data_samples=[DataSample().set_gt_label(0) for _ in range(batch_size)])
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='*')
    parser.add_argument('--reference', default=REFERENCE)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--fp32', action='store_true',
                        help='replace AmpOptimWrapper by OptimWrapper in every config')
    parser.add_argument('--out', help='also write the markdown table here')
    args = parser.parse_args()
    configs = args.configs or sorted(
        p for m in METHODS for p in glob.glob(osp.join(REPO, 'configs', m, '*toy-pretrain.py')))
    if not configs:
        print('no configs to benchmark', file=sys.stderr)
        return 2
    hub = MessageHub.get_current_instance()
    for key, value in (('epoch', 0), ('max_epochs', 1), ('iter', 0), ('max_iters', 1000)):
        hub.update_info(key, value)
    torch.manual_seed(0)
    entries = [prepare(p, args.batch_size, args.device, args.fp32)
               for p in [args.reference] + configs]
    for e in entries:
        run_steps(e, args.warmup, args.device)
    for _ in range(args.rounds):
        for e in entries:
            e['times'].append(run_steps(e, args.iters, args.device))
    ref = statistics.median(entries[0]['times'])
    lines = [f'device {args.device}, {torch.get_num_threads()} threads, batch {args.batch_size}, '
             f'{args.rounds} rounds x {args.iters} steps (median)', '',
             '| config | views x size | ms / step | × reference |', '|---|---|---|---|']
    for e in entries:
        med = statistics.median(e['times'])
        lines.append(f"| {e['name']} | {e['views']} x {e['size']} | {1e3 * med:.1f} | "
                     f'{med / ref:.2f} |')
    table = '\n'.join(lines)
    print(table)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
