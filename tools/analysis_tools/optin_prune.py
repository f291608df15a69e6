"""One-shot OPTIN pruning of a trained transformer under a MAC budget, no retraining.

    python tools/analysis_tools/optin_prune.py CONFIG CHECKPOINT [--flops-budget 0.6]
        [--calib-batches 1] [--calib-batch-size N] [--neuron-group 1] [--lambda 10]
        [--temperature 4] [--seed 0] [--skip-eval] [--out-dir DIR] [--device cpu]
        [--cfg-options ...]

Khaki & Plataniotis, "The Need for Speed: Pruning Transformers with One Recipe" (ICLR 2024).
CONFIG is an ordinary mmpretrain classifier config (``VisionTransformer``/``SwinTransformer``
backbone, e.g. ``mmpretrain::deit/deit-small_4xb256_in1k.py``) or an mmseg segmentor with a Swin
backbone (Mask2Former); its optional ``optin = dict(...)`` holds pruning settings
(``configs/optin/``), which the flags override. Steps:

1. build the model with the config's test dataloader/evaluator through mmengine's ``Runner``,
   load CHECKPOINT, evaluate it (unless ``--skip-eval``);
2. take ``--calib-batches`` batches of the config's *training* dataloader (one in the paper) as
   the calibration batch, score every head and FFN neuron by OPTIN's trajectory distortion, keep
   the units that maximise the importance within ``--flops-budget`` × the prunable MACs;
3. bake the masks into the weights (``optin_masked.pth``: same shapes, loads with CONFIG) and
   evaluate again; slice the model physically where the architecture allows
   (``optin_pruned.pth``, ViT heads and every FFN; load with
   ``mmmask.models.pruning.load_optin_pruned``) and check it matches the masked model.

Writes to ``--out-dir``: ``optin_masks.json`` (kept head/neuron indices per block),
``optin_scores.json``, ``optin_report.json`` (MACs and metrics before/after), both checkpoints.
"""
import argparse
import copy
import json
import os
import os.path as osp
import time
from typing import Dict, Optional, Sequence

import torch

#: flag name -> key of the config's ``optin`` dict
FLAG_KEYS = dict(flops_budget='flops_budget', calib_batches='calib_batches',
                 calib_batch_size='calib_batch_size', neuron_group='neuron_group',
                 lambda_='lambda_', temperature='temperature', seed='seed')
DEFAULTS = dict(flops_budget=0.6, calib_batches=1, calib_batch_size=None, neuron_group=1,
                lambda_=10.0, temperature=4.0, seed=0)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="trained checkpoint, or 'none' for the config's init")
    parser.add_argument('--flops-budget', type=float, default=None,
                        help='kept fraction of the prunable MACs (heads + FFN neurons); 0.6')
    parser.add_argument('--calib-batches', type=int, default=None,
                        help='training batches forming the calibration batch (paper: 1)')
    parser.add_argument('--calib-batch-size', type=int, default=None,
                        help="batch size of the calibration batches (default: the config's)")
    parser.add_argument('--neuron-group', type=int, default=None,
                        help='score FFN neurons in contiguous groups of this size (1 = paper)')
    parser.add_argument('--lambda', dest='lambda_', type=float, default=None,
                        help='target MD/KL ratio (paper: 10)')
    parser.add_argument('--temperature', type=float, default=None, help='KL temperature (4)')
    parser.add_argument('--seed', type=int, default=None)
    parser.add_argument('--skip-eval', action='store_true',
                        help='do not run the test dataloader before/after pruning')
    parser.add_argument('--out-dir', default='work_dirs/optin_prune')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args(argv)


def settings_from(cfg, args: argparse.Namespace) -> Dict[str, object]:
    """The config's ``optin`` dict, the defaults filled in, the flags on top."""
    from mmmask.models.pruning.optin import SCORE_KEYS
    settings = dict(DEFAULTS)
    settings.update(dict(cfg.get('optin', None) or {}))
    for flag, key in FLAG_KEYS.items():
        if getattr(args, flag) is not None:
            settings[key] = getattr(args, flag)
    known = set(DEFAULTS) | set(SCORE_KEYS)
    bad = sorted(set(settings) - known)
    if bad:
        raise SystemExit(f'unknown keys {bad} in the config\'s optin dict; known: {sorted(known)}')
    if not 0 < float(settings['flops_budget']) <= 1:
        raise SystemExit(f'--flops-budget must be in (0, 1] (kept fraction of the MACs), got '
                         f'{settings["flops_budget"]}')
    if int(settings['calib_batches']) < 1:
        raise SystemExit('--calib-batches must be at least 1')
    return settings


def _quiet_loader(loader_cfg, batch_size: Optional[int] = None):
    loader_cfg = copy.deepcopy(loader_cfg)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    if batch_size:
        loader_cfg['batch_size'] = batch_size
    return loader_cfg


def calibration_batch(cfg, model, batches: int, batch_size: Optional[int], seed: int,
                      device: str):
    """``batches`` batches of the training dataloader (seeded shuffle), preprocessed and joined."""
    from mmengine.runner import Runner
    if not cfg.get('train_dataloader'):
        raise SystemExit('the config has no train_dataloader: OPTIN calibrates on training '
                         'images; add one (its dataset only needs to be readable)')
    torch.manual_seed(seed)
    loader_cfg = _quiet_loader(cfg.train_dataloader, batch_size)
    sampler = dict(loader_cfg.get('sampler') or {})
    if sampler:
        sampler['seed'] = seed
        loader_cfg['sampler'] = sampler
    loader = Runner.build_dataloader(loader_cfg, seed=seed)
    inputs, samples = [], []
    it = iter(loader)
    for _ in range(batches):
        data = model.data_preprocessor(next(it), False)
        inputs.append(data['inputs'].to(device))
        samples += list(data.get('data_samples') or [])
    return torch.cat(inputs), samples or None


def _save(model, path: str, meta: Dict[str, object]) -> None:
    torch.save(dict(state_dict={k: v.detach().cpu() for k, v in model.state_dict().items()},
                    meta=meta), path)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.model import is_model_wrapper
    from mmengine.runner import Runner

    import mmmask.models  # noqa: F401  (registers mmmask.*)
    from mmmask.models.pruning.optin import (SCORE_KEYS, apply_soft_masks, count_model_macs,
                                             discover_blocks, optin_prune_model,
                                             physically_prune, prunable_macs)
    if not osp.isfile(args.config):
        raise SystemExit(f'config {args.config} not found')
    if args.checkpoint != 'none' and not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint {args.checkpoint} not found (pass "none" to prune the '
                         'initial weights)')
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    settings = settings_from(cfg, args)
    os.makedirs(args.out_dir, exist_ok=True)
    cfg.work_dir = osp.abspath(args.out_dir)
    cfg.load_from = None if args.checkpoint == 'none' else args.checkpoint
    cfg.resume = False
    cfg.launcher = 'none'
    if cfg.get('env_cfg') is not None:
        cfg.env_cfg['dist_cfg'] = cfg.env_cfg.get('dist_cfg', dict(backend='gloo'))
    if not args.skip_eval:
        missing = [k for k in ('test_dataloader', 'test_evaluator', 'test_cfg')
                   if cfg.get(k) is None]
        if missing:
            raise SystemExit(f'the config lacks {missing} needed to evaluate; add them or pass '
                             '--skip-eval')
        cfg.test_dataloader = _quiet_loader(cfg.test_dataloader)
    else:
        for k in ('test_dataloader', 'test_evaluator', 'test_cfg'):
            cfg.pop(k, None)
    for k in ('val_dataloader', 'val_evaluator', 'val_cfg', 'train_cfg', 'optim_wrapper',
              'param_scheduler'):
        cfg.pop(k, None)
    train_loader_cfg = cfg.pop('train_dataloader', None)
    runner = Runner.from_cfg(cfg)
    cfg.train_dataloader = train_loader_cfg
    runner.load_or_resume()
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    model.to(args.device).eval()

    report: Dict[str, object] = dict(config=args.config, checkpoint=args.checkpoint,
                                     settings=settings)
    if not args.skip_eval:
        report['metrics_before'] = {k: float(v) for k, v in runner.test().items()}

    inputs, samples = calibration_batch(cfg, model, int(settings['calib_batches']),
                                        settings['calib_batch_size'], int(settings['seed']),
                                        args.device)
    score_kwargs = {k: settings[k] for k in SCORE_KEYS if k in settings}
    t0 = time.time()
    last = [0.0]

    def progress(kind, done, total):
        if time.time() - last[0] > 30 or done == total:
            last[0] = time.time()
            print(f'OPTIN scoring {kind}s: {done}/{total}', flush=True)

    res = optin_prune_model(model, inputs, float(settings['flops_budget']), samples,
                            neuron_group=int(settings['neuron_group']), progress=progress,
                            **score_kwargs)
    blocks, head_keep, neuron_keep = res['blocks'], res['head_keep'], res['neuron_keep']
    report['scoring_seconds'] = time.time() - t0
    report['calibration_images'] = int(inputs.shape[0])
    info = res['info']
    try:
        macs_before = count_model_macs(model, inputs[:1])
    except Exception as err:  # jit tracing of exotic heads may fail; the unit MACs still hold
        print(f'whole-model MAC count skipped: {err!r}')
        macs_before = None
    removed = info['base_macs'] - info['kept_macs']
    report['macs'] = dict(
        prunable_before=info['base_macs'], prunable_after=info['kept_macs'],
        prunable_ratio=info['ratio'], model_before=macs_before,
        model_after=None if macs_before is None else macs_before - removed,
        model_ratio=None if macs_before is None else (macs_before - removed) / macs_before)
    report['kept'] = [dict(block=b.name, heads=int(head_keep[i].sum()), of_heads=b.num_heads,
                           neurons=int(neuron_keep[i].sum()), of_neurons=b.hidden)
                      for i, b in enumerate(blocks)]
    masks = res['masks']
    masks.update(config=args.config, checkpoint=args.checkpoint)
    with open(osp.join(args.out_dir, 'optin_masks.json'), 'w') as f:
        json.dump(masks, f, indent=1)
    with open(osp.join(args.out_dir, 'optin_scores.json'), 'w') as f:
        json.dump(dict(blocks=[b.name for b in blocks],
                       head=[s.tolist() for s in res['scores']['head']],
                       neuron=[s.tolist() for s in res['scores']['neuron']],
                       neuron_group=int(settings['neuron_group'])), f)

    # physical pruning on a copy, checked against the (hook-)masked model
    with torch.no_grad():
        from mmmask.models.pruning.optin import OptinMasker
        masker = OptinMasker(blocks)
        masker.set(head_keep, neuron_keep)
        with masker:
            ref = model(inputs, mode='tensor') if not hasattr(model, 'encode_decode') else None
    pruned = copy.deepcopy(model)
    pblocks = discover_blocks(pruned)
    phys = physically_prune(pblocks, head_keep, neuron_keep)
    report['physical'] = phys
    if ref is not None:
        with torch.no_grad():
            out = pruned(inputs, mode='tensor')
        report['physical']['max_abs_diff_vs_masked'] = float((out - ref).abs().max())
    try:
        report['macs']['model_physical'] = count_model_macs(pruned, inputs[:1])
    except Exception as err:
        print(f'MAC count of the sliced model skipped: {err!r}')
    meta = dict(optin=masks, optin_physical=phys)
    _save(pruned, osp.join(args.out_dir, 'optin_pruned.pth'), meta)
    del pruned

    apply_soft_masks(blocks, head_keep, neuron_keep)
    assert abs(prunable_macs(blocks, head_keep, neuron_keep) - info['kept_macs']) < 1e-6 * max(
        info['kept_macs'], 1)
    _save(model, osp.join(args.out_dir, 'optin_masked.pth'), dict(optin_masks=masks))
    if not args.skip_eval:
        report['metrics_after'] = {k: float(v) for k, v in runner.test().items()}
    with open(osp.join(args.out_dir, 'optin_report.json'), 'w') as f:
        json.dump(report, f, indent=1)

    m = report['macs']
    print(f"OPTIN kept {m['prunable_ratio']:.4f} of the prunable MACs "
          f"({m['prunable_after']:.4g} / {m['prunable_before']:.4g} per image, budget "
          f"{settings['flops_budget']})")
    if m['model_before'] is not None:
        print(f"model MACs per image: before {m['model_before']:.4g}, after "
              f"{m['model_after']:.4g} ({m['model_ratio']:.4f})")
    for row in report['kept']:
        print(f"  {row['block']}: heads {row['heads']}/{row['of_heads']}, "
              f"neurons {row['neurons']}/{row['of_neurons']}")
    if 'metrics_before' in report:
        print(f"metrics before: {report['metrics_before']}")
        print(f"metrics after: {report['metrics_after']}")
    print(f'wrote {args.out_dir}/optin_masks.json, optin_report.json, optin_masked.pth, '
          'optin_pruned.pth')
    return report


if __name__ == '__main__':
    main()
