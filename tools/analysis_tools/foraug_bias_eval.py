"""ForAug bias metrics of a trained classifier: background robustness, foreground focus, centre
bias and size bias (Nauen et al., ForAug, arXiv 2503.09399).

    python tools/analysis_tools/foraug_bias_eval.py CONFIG CHECKPOINT FORNET_ROOT [--split val]
        [--metrics background focus center size] [--attribution ig|grad|gradcam]
        [--gradcam-layer backbone.layer4] [--size-facts 0.5 0.75 1 1.25 1.5]
        [--mask-sigma 4] [--canvas-size S] [--max-samples 500] [--input-size S] [--seed 0]
        [--out-dir DIR] [--device cpu] [--cfg-options ...]

CONFIG/CHECKPOINT: any mmpretrain-style classifier (mmpretrain ``ImageClassifier`` with ResNet,
VisionTransformer, ... or an mmmask model; ``CHECKPOINT`` may be ``none``). FORNET_ROOT: data in
the ``mmmask.ForNetDataset`` layout (``foraug_prepare.py``). Composites are built with the official
evaluation settings at the background's resolution and resized to the model's input size (from
the config's test pipeline ``CenterCrop``/``Resize``, or ``--input-size``). Writes
``foraug_bias.json``, ``composites.png`` (example composites per condition) and ``center_bias.png``
(accuracy per nonant) to ``--out-dir``.
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

METRICS = ('background', 'focus', 'center', 'size')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="checkpoint file, or 'none' for the initial weights")
    parser.add_argument('fornet_root', help='ForNet-layout data (foraug_prepare.py)')
    parser.add_argument('--split', default='val')
    parser.add_argument('--metrics', nargs='+', choices=METRICS, default=list(METRICS))
    parser.add_argument('--attribution', choices=['ig', 'grad', 'gradcam'], default='ig')
    parser.add_argument('--gradcam-layer', default=None,
                        help='module name for Grad-CAM (default: the backbone)')
    parser.add_argument('--ig-steps', type=int, default=16)
    parser.add_argument('--size-facts', type=float, nargs='+',
                        default=[0.5, 0.75, 1.0, 1.25, 1.5])
    parser.add_argument('--mask-sigma', type=float, default=4.0,
                        help='edge-blur sigma of the recombination (official 4; ~1 for 64 px)')
    parser.add_argument('--fg-scale-jitter', type=float, default=0.3)
    parser.add_argument('--canvas-size', type=int, default=None,
                        help='resize backgrounds to this size before pasting (small backgrounds)')
    parser.add_argument('--max-samples', type=int, default=500)
    parser.add_argument('--input-size', type=int, default=None)
    parser.add_argument('--pruning-ratio', type=float, default=0.8)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--num-examples', type=int, default=6, help='rows of composites.png')
    parser.add_argument('--out-dir', default='work_dirs/foraug_bias')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args(argv)


def build_classifier(cfg, checkpoint: Optional[str], device: str = 'cpu'):
    from mmmask.apis import load_trained_model
    model = load_trained_model(cfg, checkpoint, device)
    if not hasattr(model, 'data_preprocessor'):
        raise TypeError('the config must build an mmpretrain-style classifier with a '
                        'data_preprocessor (e.g. mmpretrain.ImageClassifier)')
    return model


def input_size_from_cfg(cfg, default: int = 224) -> int:
    """The square input size of the config's test pipeline (CenterCrop, else Resize)."""
    pipeline = cfg.get('test_dataloader', cfg.get('val_dataloader', {})).get('dataset', {}).get(
        'pipeline', cfg.get('test_pipeline', []))
    size = None
    for t in pipeline or []:
        kind = str(t.get('type', ''))
        if kind.endswith('CenterCrop'):
            size = t.get('crop_size', size)
        elif kind.endswith('Resize') and size is None:
            size = t.get('scale', size)
    if size is None:
        return default
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def model_fns(model):
    """``(logits_fn, normalize)``: logits of normalised inputs, and RGB 0..255 → the model's
    normalised input (its data preprocessor gets BGR like LoadImageFromFile gives)."""

    def logits(x):
        out = model(x, mode='tensor')
        return out[-1] if isinstance(out, (tuple, list)) else out

    def normalize(x):
        return model.data_preprocessor(dict(inputs=x.flip(1)), False)['inputs']

    return logits, normalize


def plot_examples(ev, out_dir: str, num: int, size_facts: Sequence[float]) -> str:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    conditions = [('original', {}, 'own bg'), ('same', {}, 'same-class bg'), ('all', {}, 'any bg'),
                  ('original', dict(fg_in_nonant=0), 'nonant 0'),
                  ('original', dict(fg_in_nonant=4), 'nonant 4'),
                  ('original', dict(fg_in_nonant=8), 'nonant 8')]
    conditions += [('original', dict(size_fact=float(f)), f'size x{f:g}')
                   for f in (min(size_facts), max(size_facts))]
    saved = ev.indices
    ev.indices = saved[:num]
    columns = []
    try:
        for bg, kw, title in conditions:
            _, masks, _, raw = ev.composites(bg, **kw)
            columns.append((title, raw, masks))
    finally:
        ev.indices = saved
    rows = len(columns[0][1])
    fig, axes = plt.subplots(rows, len(columns), figsize=(1.8 * len(columns), 1.8 * rows),
                             squeeze=False)
    for j, (title, raw, _) in enumerate(columns):
        for i in range(rows):
            axes[i, j].imshow(raw[i])
            axes[i, j].axis('off')
        axes[0, j].set_title(title, fontsize=8)
    fig.tight_layout()
    path = osp.join(out_dir, 'composites.png')
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_nonants(acc: List[float], out_dir: str, title: str) -> str:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    grid = np.asarray(acc).reshape(3, 3)
    fig, ax = plt.subplots(figsize=(3.2, 3))
    im = ax.imshow(grid, cmap='viridis', vmin=0, vmax=max(1e-6, grid.max()))
    for (r, c), v in np.ndenumerate(grid):
        ax.text(c, r, f'{v:.2f}', ha='center', va='center', color='w', fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = osp.join(out_dir, 'center_bias.png')
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    from mmengine.config import Config

    from mmmask.datasets.foraug import ForNetDataset
    from mmmask.evaluation.robustness.foraug_bias import ForAugBiasEvaluator
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    if 1.0 not in args.size_facts and 'size' in args.metrics:
        raise SystemExit('--size-facts must contain 1.0 (the reference size)')
    model = build_classifier(cfg, args.checkpoint, args.device)
    dataset = ForNetDataset(args.fornet_root, split=args.split, pruning_ratio=args.pruning_ratio)
    size = args.input_size or input_size_from_cfg(cfg)
    logits, normalize = model_fns(model)
    ev = ForAugBiasEvaluator(dataset, logits, normalize, input_size=size, seed=args.seed,
                             max_samples=args.max_samples, batch_size=args.batch_size,
                             recombine_kwargs=dict(mask_smoothing_sigma=args.mask_sigma,
                                                   fg_scale_jitter=args.fg_scale_jitter),
                             device=args.device, canvas_size=args.canvas_size)
    layer = None
    if args.attribution == 'gradcam':
        layer = model.get_submodule(args.gradcam_layer) if args.gradcam_layer else model.backbone
    result = ev.evaluate(args.metrics, args.attribution, layer, args.size_facts)
    result.update(config=args.config, checkpoint=args.checkpoint, fornet_root=args.fornet_root,
                  split=args.split, input_size=size, seed=args.seed,
                  classes=list(dataset.metainfo['classes']))
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'foraug_bias.json'), 'w') as f:
        json.dump(result, f, indent=2, default=float)
    plot_examples(ev, args.out_dir, args.num_examples, args.size_facts)
    if 'nonant_acc' in result:
        plot_nonants(result['nonant_acc'], args.out_dir,
                     f"accuracy per nonant (centre bias {result['center_bias']:.3f})")
    keys = [k for k in ('acc_original', 'acc_same', 'acc_all', 'background_robustness',
                        'foreground_focus', 'center_bias', 'size_bias') if k in result]
    print('ForAug bias: ' + ', '.join(f'{k}={result[k]:.4f}' for k in keys))
    return result


if __name__ == '__main__':
    main()
