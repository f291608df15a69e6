"""Natural vs adversarial single-patch robustness of a classifier, optionally with attention
temperature (Gu, Tresp & Qin, "Are Vision Transformers Robust to Patch Perturbations?", ECCV 2022).

    python tools/analysis_tools/patch_robustness.py CONFIG CHECKPOINT [--num-images 64]
        [--patch-size 16] [--kinds natural adversarial random] [--corruptions gaussian_noise ...]
        [--severity 5] [--positions all|random] [--eps 255] [--steps 100] [--step-size 8]
        [--temperature 1 2 4] [--out-dir DIR] [--device cpu] [--cfg-options ...]

CONFIG is any classifier config (mmpretrain ``ImageClassifier`` with ``VisionTransformer`` / DeiT /
Swin / ``ResNet``, mmmask models); CHECKPOINT its weights ('none': the initial weights). Defaults
come from the config's ``patch_robustness = dict(...)`` (see ``configs/patch_robustness/``) and
are overridden by the options. ``--num-images`` validation images (spread evenly over the set,
the clean pipeline: ``PatchCorruption`` steps are dropped) are perturbed on one grid-aligned
patch (``--patch-size``, default the ViT's own patch size, else 16):

* ``natural``: ImageNet-C corruptions (``--corruptions``, ``--severity``) pasted on the patch;
* ``adversarial``: PGD on that patch only (pixels 0-255, L∞ ``--eps``, ``--steps``,
  ``--step-size``, through the model's data preprocessor);
* ``random``: uniform noise of the same budget on the same patch.

``--positions all`` attacks every grid cell of every image (per-position heat maps),
``random`` one seeded cell per image (the cheaper ImageNet protocol). For each temperature
(``--temperature``, ViTs only, set on the built model by ``set_attention_temperature``) it
reports the fooling rate (share of the clean-correct images misclassified), accuracy, loss
increase and the share of attention the perturbed patch receives (``uniform_share`` = 1/N).
Writes ``patch_robustness.json``, ``fooling_rate.png`` (heat maps: fooling rate per position per
kind, attention share on the attacked patch; rows = temperatures) and ``examples.png``.
"""
import argparse
import copy
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

DEFAULTS = dict(num_images=64, patch_size=None, kinds=['natural', 'adversarial', 'random'],
                corruptions=['gaussian_noise', 'shot_noise', 'impulse_noise', 'defocus_blur',
                             'motion_blur', 'zoom_blur', 'brightness', 'contrast', 'pixelate',
                             'jpeg_compression'],
                severity=5, positions='all', eps=255.0, steps=100, step_size=8.0,
                random_start=True, temperature=[1.0], batch_size=32, seed=0)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="checkpoint file, or 'none' for the initial weights")
    parser.add_argument('--num-images', type=int)
    parser.add_argument('--patch-size', type=int, help='default: the ViT patch size, else 16')
    parser.add_argument('--kinds', nargs='+', choices=['natural', 'adversarial', 'random'])
    parser.add_argument('--corruptions', nargs='+')
    parser.add_argument('--severity', type=int)
    parser.add_argument('--positions', choices=['all', 'random'])
    parser.add_argument('--eps', type=float, help='L-inf budget in pixels (255 = unbounded)')
    parser.add_argument('--steps', type=int)
    parser.add_argument('--step-size', type=float)
    parser.add_argument('--no-random-start', action='store_true')
    parser.add_argument('--temperature', type=float, nargs='+',
                        help='attention temperatures to evaluate (ViTs)')
    parser.add_argument('--no-attention', action='store_true',
                        help='do not record attention (keeps the plain attention of a ViT)')
    parser.add_argument('--batch-size', type=int)
    parser.add_argument('--seed', type=int)
    parser.add_argument('--out-dir', default='work_dirs/patch_robustness')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args(argv)


def settings(cfg, args: argparse.Namespace) -> Dict[str, object]:
    """The config's ``patch_robustness`` dict over :data:`DEFAULTS`, then the CLI options."""
    out = copy.deepcopy(DEFAULTS)
    unknown = set(cfg.get('patch_robustness', {})) - set(DEFAULTS)
    if unknown:
        raise SystemExit(f'unknown patch_robustness keys in the config: {sorted(unknown)}; '
                         f'known: {sorted(DEFAULTS)}')
    out.update(cfg.get('patch_robustness', {}))
    for key in DEFAULTS:
        value = getattr(args, key, None)
        if value is not None:
            out[key] = value
    if args.no_random_start:
        out['random_start'] = False
    if not isinstance(out['temperature'], (list, tuple)):
        out['temperature'] = [out['temperature']]
    out['temperature'] = [1.0 if t is None else float(t) for t in out['temperature']]
    from mmmask.evaluation.robustness.patch_robustness import CORRUPTIONS
    bad = [c for c in out['corruptions'] if c not in CORRUPTIONS]
    if bad:
        raise SystemExit(f'unknown corruptions {bad}; choose from {sorted(CORRUPTIONS)}')
    return out


def build_model(cfg, checkpoint: Optional[str], device: str = 'cpu'):
    import mmmask.evaluation.robustness  # noqa: F401  (registers PatchCorruption)
    from mmmask.apis import load_trained_model
    try:
        return load_trained_model(cfg, checkpoint, device)
    except FileNotFoundError as err:
        raise SystemExit(str(err))


def model_patch_size(model) -> Optional[int]:
    """The patch size of a ViT backbone's patch embedding (None for CNNs)."""
    embed = getattr(getattr(model, 'backbone', model), 'patch_embed', None)
    proj = getattr(embed, 'projection', None)
    if proj is not None and hasattr(proj, 'stride'):
        return int(proj.stride[0])
    return None


def _clean_pipeline(pipeline: List[dict]) -> List[dict]:
    return [t for t in pipeline if 'PatchCorruption' not in str(t.get('type', ''))]


def load_images(cfg, model, num: int, batch_size: int = 32):
    """``num`` preprocessed validation images spread evenly over the set, with their labels."""
    from mmmask.apis import evenly_spaced_inputs
    return evenly_spaced_inputs(cfg, model, num, batch_size, pipeline_fn=_clean_pipeline)


def run(model, inputs: Tensor, labels: Tensor, opts: Dict[str, object],
        record_attention: bool = True) -> Dict[str, object]:
    """:func:`evaluate_patch_robustness` for every temperature of ``opts``."""
    from mmmask.evaluation.robustness.patch_robustness import evaluate_patch_robustness
    from mmmask.models.layers import ensure_biased_attention, set_attention_temperature
    from mmmask.models.layers.attention_temperature import get_attention_temperatures
    is_vit = bool(get_attention_temperatures(model)) or _has_plain_attention(model)
    temps = opts['temperature']
    if any(t != 1.0 for t in temps) and not is_vit:
        raise SystemExit(f'--temperature {temps}: {type(model).__name__} has no attention layer '
                         '(a CNN?); attention temperature applies to ViTs only: leave it at 1')
    if is_vit and record_attention:
        ensure_biased_attention(model)
    results = {}
    for t in temps:
        if is_vit:
            set_attention_temperature(model, t)
        results[f'T={t:g}'] = evaluate_patch_robustness(
            model, inputs, labels, patch_size=opts['patch_size'], kinds=opts['kinds'],
            corruptions=opts['corruptions'], severity=opts['severity'],
            positions=opts['positions'], eps=opts['eps'], steps=opts['steps'],
            step_size=opts['step_size'], random_start=opts['random_start'],
            batch_size=opts['batch_size'], record_attention=record_attention,
            seed=opts['seed'])
    if is_vit:
        set_attention_temperature(model, 1.0)
    return results


def _has_plain_attention(model) -> bool:
    from mmpretrain.models.utils import MultiheadAttention
    from mmpretrain.models.utils.attention import WindowMSA
    return any(isinstance(m, MultiheadAttention) or type(m) is WindowMSA  # noqa: E721
               for m in model.modules())


def plot_maps(results: Dict[str, Dict[str, object]], path: str) -> bool:
    """Heat maps of the fooling rate per position for each kind (+ attention share on the
    attacked patch under attack), one row per temperature. False when there is no map."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = []
    for temp, res in results.items():
        panels = [(k, v['fooling_rate_map'], 'fooling rate') for k, v in res.items()
                  if isinstance(v, dict) and 'fooling_rate_map' in v]
        adv = res.get('adversarial', {})
        if 'attention_share_map' in adv:
            panels.append(('adversarial', adv['attention_share_map'], 'attention on patch'))
        if panels:
            rows.append((temp, panels))
    if not rows:
        return False
    cols = max(len(p) for _, p in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.6 * cols, 2.5 * len(rows)),
                             squeeze=False)
    for i, (temp, panels) in enumerate(rows):
        for j, (kind, grid, what) in enumerate(panels):
            ax = axes[i, j]
            data = np.array(grid, dtype=float)
            vmax = 1.0 if what == 'fooling rate' else max(np.nanmax(data), 1e-6)
            im = ax.imshow(data, cmap='magma', vmin=0, vmax=vmax)
            mean = np.nanmean(data) if np.isfinite(data).any() else float('nan')
            ax.set_title(f'{temp} {kind.replace("natural/", "")}\n{what} {mean:.2f}',
                         fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.046)
        for j in range(len(panels), cols):
            axes[i, j].axis('off')
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def plot_examples(model, inputs: Tensor, labels: Tensor, opts: Dict[str, object],
                  path: str) -> None:
    """First image: clean | natural (first corruption) | random | adversarial patch, with the
    predicted class, at the centre cell."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mmmask.evaluation.robustness.patch_robustness import (classifier_fn, corrupt_inputs,
                                                               denormalize, paste_patch,
                                                               patch_grid, patch_pgd,
                                                               patch_random_noise,
                                                               preprocessor_stats)
    x, y = inputs[:1], labels[:1]
    fn = classifier_fn(model)
    mean, std = preprocessor_stats(model, x.device)
    gh, gw = patch_grid(x.shape[2], x.shape[3], opts['patch_size'])
    pos = (gh // 2, gw // 2)
    panels = [('clean', x)]
    panels.append((f"natural {opts['corruptions'][0]}",
                   paste_patch(x, corrupt_inputs(x, mean, std, opts['corruptions'][0],
                                                 opts['severity'], opts['seed']), pos,
                               opts['patch_size'])))
    panels.append(('random', patch_random_noise(x, pos, opts['patch_size'], mean, std,
                                                opts['eps'], opts['seed'])[0]))
    panels.append(('adversarial', patch_pgd(fn, x, y, pos, opts['patch_size'], mean, std,
                                            opts['eps'], opts['steps'], opts['step_size'],
                                            opts['random_start'], opts['seed'])[0]))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.4 * len(panels), 2.9))
    for ax, (name, img) in zip(axes, panels):
        with torch.no_grad():
            pred = int(fn(img).argmax(1))
        pixels = denormalize(img, mean, std)[0].clamp(0, 255) / 255
        ax.imshow(pixels.permute(1, 2, 0).cpu().numpy())
        ax.set_title(f'{name}\npred {pred} (label {int(y)})', fontsize=7)
        ax.axis('off')
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def format_table(results: Dict[str, Dict[str, object]]) -> str:
    lines = [f"{'T':<6} {'kind':<26} {'fool':>6} {'acc':>6} {'dloss':>7} {'att-patch':>9} "
             f"{'att-clean':>9}"]
    for temp, res in results.items():
        lines.append(f"{temp:<6} {'clean':<26} {'':>6} {res['clean_acc']:>6.3f}")
        for kind, v in res.items():
            if not isinstance(v, dict) or 'fooling_rate' not in v:
                continue
            share = v.get('attention_share')
            clean = v.get('attention_share_clean')
            lines.append(f"{temp:<6} {kind:<26} {v['fooling_rate']:>6.3f} {v['accuracy']:>6.3f} "
                         f"{v['loss_increase']:>7.3f} "
                         f"{'n/a' if share is None else f'{share:.3f}':>9} "
                         f"{'n/a' if clean is None else f'{clean:.3f}':>9}")
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    from mmengine.config import Config
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    opts = settings(cfg, args)
    torch.manual_seed(opts['seed'])
    model = build_model(cfg, args.checkpoint, args.device)
    if opts['patch_size'] is None:
        opts['patch_size'] = model_patch_size(model) or 16
    inputs, labels = load_images(cfg, model, opts['num_images'], opts['batch_size'])
    inputs = inputs.to(args.device)
    if inputs.shape[-1] < opts['patch_size'] or inputs.shape[-2] < opts['patch_size']:
        raise SystemExit(f"images {tuple(inputs.shape[-2:])} are smaller than --patch-size "
                         f"{opts['patch_size']}")
    results = run(model, inputs, labels, opts, record_attention=not args.no_attention)
    os.makedirs(args.out_dir, exist_ok=True)
    plot_maps(results, osp.join(args.out_dir, 'fooling_rate.png'))
    plot_examples(model, inputs, labels, opts, osp.join(args.out_dir, 'examples.png'))
    out = dict(config=args.config, checkpoint=args.checkpoint,
               settings={k: v for k, v in opts.items()}, results=results)
    print(format_table(results))
    with open(osp.join(args.out_dir, 'patch_robustness.json'), 'w') as f:
        json.dump(out, f, indent=2, default=lambda v: None if isinstance(v, float) and
                  math.isnan(v) else str(v))
    return out


if __name__ == '__main__':
    main()
