"""Evaluate a checkpoint with a config's test dataloader and evaluator.

    python tools/test.py CONFIG [CHECKPOINT] [--work-dir DIR] [--out FILE.pkl] [--show-dir DIR]
                                           [--device auto|cpu|cuda] [--cfg-options k=v ...]
                                           [--launcher none|pytorch|slurm|mpi]

CHECKPOINT may be left out only when the config's model loads its own weights (e.g. ViT-P fusion's
``segmentor_checkpoint``/``classifier_checkpoint``).
"""
import argparse
import os
import os.path as osp
import sys

import mmmask  # noqa: F401  (registries and the compatibility fixes)
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmmask.utils.checks import (SetupError, check_checkpoints, check_data_roots, check_device,
                                 friendly_build_errors, require_mmcv_ops)
from mmmask.utils.compat import shutdown_distributed


def _model_loads_itself(model_cfg) -> bool:
    """True when the model config names the checkpoints it loads (``*_checkpoint`` keys)."""
    return any(k.endswith('_checkpoint') and v for k, v in model_cfg.items())


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='checkpoint file (optional when the model loads its own weights)')
    parser.add_argument('--work-dir', help='the directory to save the evaluation metrics')
    parser.add_argument('--out', help='dump the raw predictions to this pickle file')
    parser.add_argument('--show-dir', help='save painted predictions into this folder (under '
                        'work_dir/timestamp); needs a visualization hook in the config')
    parser.add_argument('--device', default='auto', help="'auto' (default), 'cpu' or 'cuda'")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main() -> int:
    args = parse_args()
    try:
        check_device(args.device)
        cfg = Config.fromfile(args.config)
        cfg.launcher = args.launcher
        if args.cfg_options is not None:
            cfg.merge_from_dict(args.cfg_options)
        if args.work_dir is not None:
            cfg.work_dir = args.work_dir
        elif cfg.get('work_dir', None) is None:
            cfg.work_dir = osp.join('./work_dirs',
                                    osp.splitext(osp.basename(args.config))[0])
        if args.checkpoint is None:
            if not _model_loads_itself(cfg.model):
                raise SetupError('give a CHECKPOINT: this model does not load its own weights '
                                 '(no *_checkpoint in its config)')
        elif not osp.isfile(args.checkpoint) and '://' not in args.checkpoint:
            raise SetupError(f'checkpoint {args.checkpoint} does not exist')
        cfg.load_from = args.checkpoint
        if args.show_dir:
            vis = cfg.get('default_hooks', {}).get('visualization')
            if vis is None:
                raise SetupError('--show-dir needs a visualization hook in default_hooks')
            vis['draw'] = True
            vis['interval'] = 1
            kind = str(vis.get('type', '')).split('.')[-1]
            if kind == 'SegVisualizationHook':  # mmseg: the visualizer saves the images
                cfg.visualizer['save_dir'] = args.show_dir
            elif kind == 'DetVisualizationHook':  # mmdet
                vis['test_out_dir'] = args.show_dir
            elif kind == 'VisualizationHook':  # mmpretrain
                vis.update(enable=True, out_dir=args.show_dir)
            else:
                raise SetupError(f'--show-dir does not know the visualization hook {kind!r}')
        if args.out:
            if not args.out.endswith(('.pkl', '.pickle')):
                raise SetupError('--out must be a .pkl file')
            dump = dict(type='DumpResults', out_file_path=args.out)
            ev = cfg.test_evaluator
            cfg.test_evaluator = (list(ev) if isinstance(ev, (list, tuple)) else [ev]) + [dump]
        require_mmcv_ops()
        check_data_roots(cfg)
        check_checkpoints(cfg)
        with friendly_build_errors():
            runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
            metrics = runner.test()
    except SetupError as e:
        print(f'\nmmmask: {e}', file=sys.stderr)
        return 2
    if runner.rank == 0:
        print('Test metrics: ' + ', '.join(f'{k}={v}' for k, v in sorted(metrics.items())),
              flush=True)
    shutdown_distributed()
    return 0


if __name__ == '__main__':
    sys.exit(main())
