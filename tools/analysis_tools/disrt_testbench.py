"""Run the DiSRT oddity testbench (arXiv 2506.00718) on a trained classifier.

    python tools/analysis_tools/disrt_testbench.py CONFIG CHECKPOINT [--layer NAME] [--pool avg]
        [--grid 4] [--mode shuffle|swap] [--num-swaps 1] [--num-triplets 200]
        [--triplets disrt|identical] [--distance cosine|euclidean] [--topk K --topk-after NAME ...] [--num-examples 8]
        [--out-dir DIR] [--seed 0] [--device cpu] [--cfg-options ...]

CONFIG is any mmpretrain/mmmask classifier config (e.g. an mmpretrain ``ImageClassifier`` with a
``ResNet`` or ``VisionTransformer``); CHECKPOINT its weights ('none': the initial weights). The
triplets come from the config's ``test_dataloader.dataset``: when it is already an
``mmmask.OddityTriplets`` (configs/disrt/) it is used (``--num-triplets``, ``--grid`` /
``--mode`` and ``--triplets`` override its settings when given), otherwise it is wrapped: the
pipeline is cut before ``PackInputs``, each image gets two patch-rearranged versions (``--grid``,
``--mode``) and the original is the odd one (chance 33.3 %).

Features: the output of the module ``--layer`` (a name from ``model.named_modules()``, e.g.
``backbone.layer3``, ``backbone.layers.11``, ``neck``; default ``neck`` when the model has one,
else ``backbone``), the last element of a tuple output, pooled by ``--pool``: ``avg`` (spatial /
token mean), ``flatten`` (keeps the layout), ``cls`` (first token). ``--topk K --topk-after
backbone.layer3 backbone.layer4`` applies Top-K activation sparsity (``mmmask.TopKSparsity``)
after those modules at test time, as the NeurIPS-2023 Top-K paper does at inference.

Prints the score; writes ``disrt.json`` (score, per-triplet answers) and ``disrt_triplets.png``
(``--num-examples`` triplets spread over the set: the true odd one framed green, the model's
pick titled).
"""
import argparse
import copy
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="checkpoint file, or 'none' for the initial weights")
    parser.add_argument('--layer', default=None, help='module whose output is the feature')
    parser.add_argument('--pool', choices=['avg', 'flatten', 'cls'], default='avg')
    parser.add_argument('--grid', type=int, nargs='+', default=None,
                        help='patch grid of the distortion (N or ROWS COLS; default 4, or the '
                        "OddityTriplets config's distortion)")
    parser.add_argument('--mode', choices=['shuffle', 'swap'], default='shuffle')
    parser.add_argument('--num-swaps', type=int, default=1)
    parser.add_argument('--triplets', choices=['disrt', 'identical'], default=None,
                        help="'disrt' (default) or 'identical': {A, A, B} sanity triplets")
    parser.add_argument('--num-triplets', type=int, default=None,
                        help="default 200, or the OddityTriplets config's num_triplets")
    parser.add_argument('--distance', choices=['cosine', 'euclidean'], default='cosine')
    parser.add_argument('--topk', type=float, default=None, help='Top-K fraction (0, 1]')
    parser.add_argument('--topk-after', nargs='+', default=None,
                        help='modules to sparsify after (default backbone.layer3 backbone.layer4)')
    parser.add_argument('--num-examples', type=int, default=8)
    parser.add_argument('--batch-size', type=int, default=48)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out-dir', default='work_dirs/disrt_testbench')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args(argv)


def build_model(cfg, checkpoint: Optional[str], device: str = 'cpu') -> nn.Module:
    """The config's model with the checkpoint loaded, in eval mode."""
    import mmmask.evaluation.robustness  # noqa: F401  (registers the DiSRT modules)
    from mmmask.apis import load_trained_model
    return load_trained_model(cfg, checkpoint, device)


def triplet_dataset(cfg, args: argparse.Namespace):
    """The ``OddityTriplets`` of the config, or one wrapped around its test dataset."""
    from mmmask.evaluation.robustness.disrt import OddityTriplets
    from mmmask.registry import DATASETS
    ds_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    grid = None if args.grid is None else (
        args.grid[0] if len(args.grid) == 1 else tuple(args.grid[:2]))
    distortion = dict(type='mmmask.PatchShuffle', grid=grid or 4, mode=args.mode,
                      num_swaps=args.num_swaps)
    if 'OddityTriplets' in str(ds_cfg.get('type')):
        ds_cfg.pop('type')
        if args.num_triplets:
            ds_cfg['num_triplets'] = args.num_triplets
        if args.triplets:
            ds_cfg['mode'] = args.triplets
        if grid is not None or args.mode != 'shuffle':
            ds_cfg['distortion'] = distortion
        return OddityTriplets(**ds_cfg)
    pipeline = list(ds_cfg.get('pipeline', []))
    cut = next((i for i, t in enumerate(pipeline)
                if str(t.get('type', '')).split('.')[-1] in ('PackInputs', 'PackClsInputs')),
               None)
    if cut is None:
        raise ValueError('disrt_testbench: the test pipeline has no PackInputs to cut before; '
                         'use a config whose test_dataloader.dataset is an mmmask.OddityTriplets '
                         '(see configs/disrt/)')
    ds_cfg['pipeline'] = pipeline[:cut]
    return OddityTriplets(DATASETS.build(ds_cfg), pipeline=pipeline[cut:], distortion=distortion,
                          mode=args.triplets or 'disrt', num_triplets=args.num_triplets or 200,
                          seed=args.seed)


def default_layer(model: nn.Module) -> str:
    return 'neck' if getattr(model, 'neck', None) is not None else 'backbone'


def pool_feature(out, pool: str) -> Tensor:
    """A ``(N, D)`` feature from a module output (tensor, or the last tensor of a tuple)."""
    if isinstance(out, (tuple, list)):
        tensors = [o for o in out if isinstance(o, Tensor)]
        if not tensors:
            raise TypeError('the feature layer returned no tensor; choose another --layer')
        out = tensors[-1]
    if out.dim() == 2:
        return out
    if pool == 'flatten':
        return out.flatten(1)
    if out.dim() == 4:
        if pool == 'cls':
            raise ValueError('--pool cls needs a token output (N, L, C), the layer gave a map')
        return out.mean((2, 3))
    if out.dim() == 3:
        return out[:, 0] if pool == 'cls' else out.mean(1)
    return out.flatten(1)


def extract(model: nn.Module, dataset, layer: str, pool: str, batch_size: int,
            examples: Sequence[int] = ()) -> Tuple[Tensor, List[int], Dict[int, List[Tensor]]]:
    """``(N, 3, D)`` features, the odd positions, and the three uint8 input images of the
    triplets in ``examples`` (for the figure)."""
    from mmengine.dataset import pseudo_collate
    modules = dict(model.named_modules())
    if layer not in modules:
        names = [n for n in modules if n and n.count('.') <= 2][:40]
        raise KeyError(f'--layer {layer!r} is not a module of the model; e.g. {names}')
    captured = {}
    handle = modules[layer].register_forward_hook(
        lambda m, i, o: captured.__setitem__('out', o))
    feats, odd, images = [], [], {}
    step = max(3, batch_size - batch_size % 3)  # whole triplets per batch
    try:
        for start in range(0, len(dataset), step):
            stop = min(len(dataset), start + step)
            samples = [dataset[i] for i in range(start, stop)]
            data = pseudo_collate(samples)
            with torch.no_grad():
                batch = model.data_preprocessor(data, False)
                model(batch['inputs'], mode='tensor')
            feats.append(pool_feature(captured['out'], pool).float().cpu())
            odd += [int(s['data_samples'].odd_view) for s in samples[::3]]
            for j in range(0, len(samples), 3):
                if (start + j) // 3 in examples:
                    images[(start + j) // 3] = [s['inputs'] for s in samples[j:j + 3]]
    finally:
        handle.remove()
    f = torch.cat(feats)
    return f.reshape(-1, 3, f.shape[-1]), odd, images


def save_grid(images: Dict[int, List[Tensor]], odd: Sequence[int],
              picks: Sequence[Sequence[int]], path: str, bgr: bool = True) -> None:
    """A PNG of the triplets in ``images``: one row each, the true odd image framed green, the
    model's pick(s) titled (green: right, red: wrong)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    if not images:
        return
    fig, axes = plt.subplots(len(images), 3, figsize=(6, 2.1 * len(images)), squeeze=False)
    for row, t in enumerate(sorted(images)):
        for v in range(3):
            ax = axes[row, v]
            img = images[t][v].permute(1, 2, 0).numpy()
            if img.shape[2] == 3 and bgr:
                img = img[..., ::-1]
            ax.imshow(img.squeeze(), cmap='gray' if img.shape[2] == 1 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if v == odd[t]:
                for side in ax.spines.values():
                    side.set_edgecolor('lime')
                    side.set_linewidth(4)
            title = ('original' if v == odd[t] else 'distorted') + \
                (' <- pick' if v in picks[t] else '')
            ax.set_title(title, fontsize=8, color='green' if v in picks[t] and v == odd[t]
                         else ('red' if v in picks[t] else 'black'))
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    from mmengine.config import Config

    from mmmask.evaluation.robustness.disrt import (CHANCE, oddity_credit, oddity_scores,
                                                    _tolerance)
    from mmmask.models.layers.topk_sparsity import add_topk_sparsity
    torch.manual_seed(args.seed)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = build_model(cfg, args.checkpoint, args.device)
    if args.topk is not None:
        after = args.topk_after or ['backbone.layer3', 'backbone.layer4']
        add_topk_sparsity(model, after, args.topk,
                          num_prefix_tokens=getattr(getattr(model, 'backbone', None),
                                                    'num_extra_tokens', 0) or 0)
    layer = args.layer or default_layer(model)
    dataset = triplet_dataset(cfg, args)
    num_triplets = len(dataset) // 3
    examples = set(np.unique(np.linspace(0, num_triplets - 1, min(args.num_examples,
                                                                  num_triplets)).round()
                             .astype(int)).tolist()) if args.num_examples > 0 else set()
    feats, odd, images = extract(model, dataset, layer, args.pool, args.batch_size, examples)
    credit = oddity_credit(feats, odd, args.distance)
    scores = oddity_scores(feats, args.distance)
    tol = _tolerance(feats, args.distance, 1e-6).unsqueeze(1)
    picks = [torch.nonzero(row >= row.max() - t).flatten().tolist()
             for row, t in zip(scores, tol)]
    accuracy = float(credit.mean() * 100)
    result = dict(
        config=args.config, checkpoint=args.checkpoint, layer=layer, pool=args.pool,
        feature_dims=int(feats.shape[-1]), distortion=repr(dataset.distortion),
        triplets=dataset.mode, distance=args.distance, num_triplets=len(odd),
        topk=None if args.topk is None else dict(k=args.topk, after=args.topk_after or
                                                 ['backbone.layer3', 'backbone.layer4']),
        accuracy=accuracy, chance=CHANCE, ties=int(sum(len(p) > 1 for p in picks)),
        per_triplet=[dict(odd=o, picks=p, credit=float(c))
                     for o, p, c in zip(odd, picks, credit)])
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'disrt.json'), 'w') as f:
        json.dump(result, f, indent=1)
    save_grid(images, odd, picks, osp.join(args.out_dir, 'disrt_triplets.png'))
    print(f'DiSRT oddity accuracy: {accuracy:.2f} % (chance {CHANCE:.2f} %) over {len(odd)} '
          f'triplets; layer {layer} ({args.pool}, {feats.shape[-1]} dims), {args.distance} '
          f'distance, {result["ties"]} tied triplets' +
          (f', Top-K {args.topk}' if args.topk is not None else ''))
    print(f'wrote {osp.join(args.out_dir, "disrt.json")} and disrt_triplets.png')
    return result


if __name__ == '__main__':
    main()
