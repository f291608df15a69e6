"""Compare input-masking strategies (grey, black, layer masking) on a trained ResNet classifier.

    python tools/analysis_tools/layer_masking_eval.py CONFIG CHECKPOINT [--num-images 32]
        [--strategies grey black layer] [--segments patch|superpixel] [--patch 16]
        [--superpixels 16] [--lime-images 4] [--lime-samples 100] [--remove-frac 0.5]
        [--shape-leak toy] [--out-dir DIR] [--device cpu] [--cfg-options ...]

Balasubramanian & Feizi, "Towards Improved Input Masking for Convolutional Neural Networks"
(ICCV 2023). The config's model must be an mmpretrain classifier with an mmpretrain ``ResNet``
(V1c/V1d) or ``mmmask.LayerMaskedResNet`` backbone; it is given layer masking in place
(``mmmask.evaluation.explanation.to_layer_masked``: same weights, the checkpoint loads unchanged).
On ``--num-images`` validation images (spread evenly over the set), each image is cut into
segments (a patch grid or superpixels) and, for every strategy:

* **missingness bias**: a random ``--remove-frac`` of the segments is removed (the same removals
  for every strategy); flips of the prediction, drift of the predicted-class histogram, share of
  the most frequent prediction, confidence drop (``missingness_bias``);
* **LIME**: LIME-image surrogates (cosine kernel, ridge) of the predicted class on the first
  ``--lime-images`` images, their weighted R² (how linear the model is under this masking) and
  the deletion curve of the explanation under the same masking (mean = area, lower is better);
* **mask-shape leak** (``--shape-leak toy``, for models of the toy digit world): toy digit crops
  whose digit is removed with a digit-shaped hole vs a shapeless box hole covering the same digit
  (and the notebook's rolled mask); ``leak = acc_shaped − acc_box`` over the clean-correct images
  (``mask_shape_leak``): a grey digit silhouette is still a digit.

Prints a table; writes ``layer_masking_eval.json``, ``lime.png`` (explanations per strategy) and
``shape_leak.png`` / ``missingness.png`` (bar charts) to ``--out-dir``.
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="checkpoint file, or 'none' for the initial weights")
    parser.add_argument('--num-images', type=int, default=32)
    parser.add_argument('--strategies', nargs='+', default=['grey', 'black', 'layer'],
                        help='grey, black, layer (fill), layer_zero, layer_pconv')
    parser.add_argument('--segments', choices=['patch', 'superpixel'], default='patch')
    parser.add_argument('--patch', type=int, default=16, help='patch size of --segments patch')
    parser.add_argument('--superpixels', type=int, default=16)
    parser.add_argument('--lime-images', type=int, default=4)
    parser.add_argument('--lime-samples', type=int, default=100)
    parser.add_argument('--remove-frac', type=float, default=0.5)
    parser.add_argument('--shape-leak', choices=['none', 'toy'], default='none')
    parser.add_argument('--shape-leak-images', type=int, default=96)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--out-dir', default='work_dirs/layer_masking_eval')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args(argv)


def build_model(cfg, checkpoint: Optional[str], device: str = 'cpu'):
    """The config's classifier (mmpretrain ResNet or LayerMaskedResNet backbone), layer-masked."""
    from mmmask.apis import load_trained_model
    from mmmask.evaluation.explanation.layer_masking import to_layer_masked
    return to_layer_masked(load_trained_model(cfg, checkpoint, device)).to(device).eval()


def load_images(cfg, model, num: int, batch_size: int = 32):
    """``num`` preprocessed validation images spread evenly over the set (not just its first
    classes), with their labels."""
    from mmmask.apis import evenly_spaced_inputs
    return evenly_spaced_inputs(cfg, model, num, batch_size)


def preprocess_bgr(model, images: List[np.ndarray]) -> Tensor:
    """BGR uint8 images (as LoadImageFromFile gives) through the model's data preprocessor."""
    batch = dict(inputs=[torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)))
                         for im in images])
    return model.data_preprocessor(batch, False)['inputs']


def shape_leak_toy(predictor, model, strategies: Sequence[str], size: int, num: int,
                   seed: int) -> Dict[str, Dict[str, float]]:
    from mmmask.evaluation.explanation.layer_masking import (box_mask, mask_shape_leak,
                                                             rolled_mask, toy_object_removal_set)
    images, labels, masks = toy_object_removal_set(num, out_size=size, seed=seed)
    device = next(model.parameters()).device
    x = preprocess_bgr(model, images).to(device)
    masks = masks.to(device)
    ones = torch.ones_like(masks)
    out = {}
    for s in strategies:
        clean = predictor(x, ones, s).cpu()
        shaped = predictor(x, masks, s).cpu()
        res = mask_shape_leak(labels, clean, shaped, predictor(x, box_mask(masks), s).cpu())
        rolled = predictor(x, rolled_mask(masks), s).cpu()
        res['acc_rolled'] = mask_shape_leak(labels, clean, shaped, rolled)['acc_shapeless']
        res['clean_acc'] = float((clean.argmax(1) == labels).float().mean())
        out[s] = res
    return out


def evaluate(model, inputs: Tensor, strategies: Sequence[str], segments: str = 'patch',
             patch: int = 16, superpixels: int = 16, lime_images: int = 4,
             lime_samples: int = 100, remove_frac: float = 0.5, seed: int = 0,
             batch_size: int = 64) -> Dict[str, object]:
    """Missingness bias and LIME for each strategy on preprocessed ``inputs (N, 3, H, W)``."""
    from mmmask.evaluation.explanation.layer_masking import (
        MaskingPredictor, deletion_curve, lime_attributions, missingness_bias, patch_segments,
        segments_to_masks, superpixel_segments)
    predictor = MaskingPredictor(model, batch_size=batch_size)
    n, _, h, w = inputs.shape
    segs = [patch_segments(h, w, patch) if segments == 'patch'
            else superpixel_segments(inputs[i].cpu(), superpixels) for i in range(n)]
    gen = torch.Generator().manual_seed(seed)
    device = inputs.device
    removal = []
    for seg in segs:
        s = int(seg.max()) + 1
        keep = torch.ones(1, s)
        drop = torch.randperm(s, generator=gen)[:max(1, int(round(remove_frac * s)))]
        keep[0, drop] = 0
        removal.append(segments_to_masks(seg, keep)[0])
    removal = torch.stack(removal).to(device)
    result: Dict[str, object] = dict(strategies=list(strategies), num_images=n,
                                     segments=segments, missingness={}, lime={})
    clean = predictor(inputs, torch.ones(n, h, w, device=device), strategies[0]).cpu()
    targets = clean.argmax(1)
    explanations = {}
    for strategy in strategies:
        masked = torch.cat([predictor(inputs[i], removal[i:i + 1], strategy)
                            for i in range(n)]).cpu()
        result['missingness'][strategy] = missingness_bias(clean, masked)
        r2s, aucs, coefs = [], [], []
        for i in range(min(lime_images, n)):
            seg = segs[i].to(device)
            num_seg = int(seg.max()) + 1

            def predict(z, i=i, seg=seg):
                probs = predictor(inputs[i], segments_to_masks(seg, z).to(device), strategy)
                return probs[:, targets[i]].cpu()

            lime = lime_attributions(predict, num_seg, lime_samples, seed=seed + i)
            curve = deletion_curve(predict, lime['coef'].argsort(descending=True), num_seg)
            r2s.append(lime['r2'])
            aucs.append(float(curve.mean()))
            coefs.append(lime['coef'])
        result['lime'][strategy] = dict(r2=float(np.mean(r2s)) if r2s else None,
                                        deletion_auc=float(np.mean(aucs)) if aucs else None)
        explanations[strategy] = coefs
    result['_explanations'] = explanations
    result['_segments'] = segs
    return result


def plot(result: Dict[str, object], inputs: Tensor, out_dir: str, mean=None, std=None) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    strategies = result['strategies']
    expl, segs = result['_explanations'], result['_segments']
    num = len(next(iter(expl.values()))) if expl else 0
    if num:
        fig, axes = plt.subplots(num, len(strategies) + 1,
                                 figsize=(2.2 * (len(strategies) + 1), 2.2 * num), squeeze=False)
        for i in range(num):
            img = inputs[i].cpu()
            if mean is not None:
                img = img * std.view(-1, 1, 1).cpu() + mean.view(-1, 1, 1).cpu()
                img = img / 255.0
            else:
                img = (img - img.min()) / (img.max() - img.min() + 1e-6)
            axes[i, 0].imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
            axes[i, 0].set_title('image', fontsize=8)
            for j, s in enumerate(strategies):
                heat = expl[s][i][segs[i].long()].numpy()
                lim = max(abs(heat).max(), 1e-6)
                axes[i, j + 1].imshow(heat, cmap='bwr', vmin=-lim, vmax=lim)
                axes[i, j + 1].set_title(f'LIME {s}', fontsize=8)
        for ax in axes.flat:
            ax.axis('off')
        fig.tight_layout()
        fig.savefig(osp.join(out_dir, 'lime.png'), dpi=80)
        plt.close(fig)
    charts = [('missingness.png', result['missingness'], ['flip_rate', 'class_drift',
                                                            'confidence_drop'])]
    if result.get('shape_leak'):
        charts.append(('shape_leak.png', result['shape_leak'],
                       ['acc_shaped', 'acc_shapeless', 'acc_rolled', 'leak']))
    for name, data, keys in charts:
        fig, ax = plt.subplots(figsize=(1.2 * len(keys) * len(strategies) / 2 + 2, 3))
        width = 0.8 / len(strategies)
        for j, s in enumerate(strategies):
            ax.bar(np.arange(len(keys)) + j * width, [data[s][k] for k in keys], width, label=s)
        ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2)
        ax.set_xticklabels(keys, fontsize=8)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(osp.join(out_dir, name), dpi=80)
        plt.close(fig)


def format_table(result: Dict[str, object]) -> str:
    lines = [f"images: {result['num_images']}  segments: {result['segments']}",
             f"{'strategy':<12} {'flip':>6} {'drift':>7} {'top-cls':>8} {'conf-drop':>9} "
             f"{'LIME R2':>8} {'del-AUC':>8}" + (
                 f" {'acc-shape':>9} {'acc-box':>8} {'leak':>7}" if result.get('shape_leak')
                 else '')]
    for s in result['strategies']:
        m, l = result['missingness'][s], result['lime'][s]
        r2 = 'n/a' if l['r2'] is None else f"{l['r2']:.3f}"
        auc = 'n/a' if l['deletion_auc'] is None else f"{l['deletion_auc']:.3f}"
        line = (f"{s:<12} {m['flip_rate']:>6.3f} {m['class_drift']:>7.3f} "
                f"{m['top_class_share']:>8.3f} {m['confidence_drop']:>9.3f} {r2:>8} {auc:>8}")
        if result.get('shape_leak'):
            k = result['shape_leak'][s]
            line += f" {k['acc_shaped']:>9.3f} {k['acc_shapeless']:>8.3f} {k['leak']:>+7.3f}"
        lines.append(line)
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    from mmengine.config import Config

    from mmmask.evaluation.explanation.layer_masking import STRATEGIES, MaskingPredictor
    bad = [s for s in args.strategies if s not in STRATEGIES]
    if bad:
        raise SystemExit(f'unknown strategies {bad}; choose from {STRATEGIES}')
    torch.manual_seed(args.seed)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    model = build_model(cfg, args.checkpoint, args.device)
    inputs, labels = load_images(cfg, model, args.num_images)
    inputs = inputs.to(args.device)
    result = evaluate(model, inputs, args.strategies, args.segments, args.patch,
                      args.superpixels, args.lime_images, args.lime_samples, args.remove_frac,
                      args.seed, args.batch_size)
    with torch.no_grad():
        result['clean_acc'] = float((model(inputs, mode='tensor').argmax(1).cpu() == labels)
                                    .float().mean())
    if args.shape_leak == 'toy':
        result['shape_leak'] = shape_leak_toy(MaskingPredictor(model, args.batch_size), model,
                                              args.strategies, inputs.shape[-1],
                                              args.shape_leak_images, args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    pre = model.data_preprocessor
    plot(result, inputs, args.out_dir, getattr(pre, 'mean', None), getattr(pre, 'std', None))
    result = {k: v for k, v in result.items() if not k.startswith('_')}
    result.update(config=args.config, checkpoint=args.checkpoint)
    print(format_table(result))
    print(f"clean top-1 on these images: {result['clean_acc']:.3f}")
    with open(osp.join(args.out_dir, 'layer_masking_eval.json'), 'w') as f:
        json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
