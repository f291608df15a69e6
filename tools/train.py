"""Train a model from an mmmask (or any OpenMMLab 2.x) config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--device auto|cpu|cuda]
                                 [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]

Works on CPU-only machines: multi-process runs use gloo, ``--amp`` uses bf16 autocast.
"""
import argparse
import logging
import os
import os.path as osp
import sys

import mmmask  # noqa: F401  (registries and the compatibility fixes)
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmmask.utils.checks import (SetupError, check_checkpoints, check_data_roots, check_device,
                                 friendly_build_errors, require_mmcv_ops)
from mmmask.utils.compat import shutdown_distributed


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or (no value) from the latest one in work_dir')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision '
                        '(fp16 on GPU, bf16 autocast on CPU)')
    parser.add_argument('--no-validate', action='store_true', help='skip validation in training')
    parser.add_argument('--auto-scale-lr', action='store_true', help='scale lr by batch size')
    parser.add_argument('--device', default='auto', help="'auto' (default), 'cpu' or 'cuda'")
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, key=value (e.g. train_cfg.max_iters=100)')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg: Config, args) -> Config:
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper in ('AmpOptimWrapper', 'mmmask.CPUAmpOptimWrapper'):
            print_log('AMP training is already enabled in your config.', logger='current',
                      level=logging.WARNING)
        else:
            if wrapper != 'OptimWrapper':
                raise SetupError(f'--amp needs optim_wrapper.type=OptimWrapper, got {wrapper}')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'  # CPUAmpOptimWrapper when there is no GPU
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise SetupError('--auto-scale-lr needs `auto_scale_lr = dict(base_batch_size=...)` '
                             'in the config')
        cfg.auto_scale_lr.enable = True
    return cfg


def final_metrics(runner) -> dict:
    scalars = runner.message_hub.log_scalars
    return {k[4:]: v.current() for k, v in scalars.items()
            if k.startswith('val/') and k not in ('val/time', 'val/data_time')}


def main() -> int:
    args = parse_args()
    try:
        check_device(args.device)
        cfg = merge_args(Config.fromfile(args.config), args)
        require_mmcv_ops()
        check_data_roots(cfg)
        check_checkpoints(cfg)
        with friendly_build_errors():
            runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
            runner.train()
    except SetupError as e:
        print(f'\nmmmask: {e}', file=sys.stderr)
        return 2
    metrics = final_metrics(runner)
    if metrics and runner.rank == 0:
        print('Final validation metrics: ' +
              ', '.join(f'{k}={v:.4f}' if isinstance(v, float) else f'{k}={v}'
                        for k, v in sorted(metrics.items())), flush=True)
    shutdown_distributed()
    return 0


if __name__ == '__main__':
    sys.exit(main())
