"""Per-path contribution and accuracy of pruned path ensembles of a ViT (Chang et al., ICCV 2023).

    python tools/analysis_tools/path_ensemble_probe.py CONFIG CHECKPOINT [--max-batches N]
        [--prune attn.3 ffn.11 ...] [--prune ...] [--out result.json] [--cfg-options ...]

The config's model must be an mmpretrain classifier whose backbone is ``mmmask.PathEnsembleViT``
or a plain mmpretrain ``VisionTransformer`` (it is swapped for a ``PathEnsembleViT`` with the same
arguments; the checkpoint loads unchanged). On the config's validation set (or its first
``--max-batches`` batches) the backbone runs **once** per batch, keeping the ``2L+1`` path outputs
``t_p``; every ensemble below is then re-summed from them (``Σ_p m_p·γ_p·t_p`` → final norm →
neck → head), so probing all paths costs one forward pass plus ``2L+3`` head passes:

* ``full``: the model as configured (its ``prune_paths`` and EnsembleScale);
* ``leave_one_out[p]``: the configured ensemble with path ``p`` also pruned — the accuracy drop
  measures how much the prediction relies on that path (the paper's per-path study);
* ``only_embed_plus[p]``: accuracy when the classifier sees only the embedding and path ``p``;
* ``contribution[p]``: mean over images and tokens of ``‖γ_p·t_p‖₂`` divided by the mean
  ``‖Σ_q γ_q·t_q‖₂`` (the share of the output each path carries);
* ``custom``: the ensembles given by each ``--prune`` list (path names ``embed``, ``attn.<l>``,
  ``ffn.<l>`` or term indices), evaluated on top of the configured pruning.

Prints a table and writes everything to ``--out`` (JSON).
"""
import argparse
import json
from typing import Dict, Iterable, List, Optional, Sequence

import torch
from torch import Tensor


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="checkpoint file, or 'none' for the initial weights")
    parser.add_argument('--max-batches', type=int, default=None)
    parser.add_argument('--prune', nargs='+', action='append', default=[],
                        help='a set of paths to prune (repeat the flag for several sets)')
    parser.add_argument('--out', default=None, help='JSON file for the results')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args(argv)


def _logits(model, feats: Tensor) -> Tensor:
    outs = (feats, )
    if getattr(model, 'with_neck', False):
        outs = model.neck(outs)
    return model.head(outs)


@torch.no_grad()
def probe(model, batches: Iterable[dict], custom: Sequence[Sequence] = (),
          max_batches: Optional[int] = None) -> Dict[str, object]:
    """Run the probe on ``batches`` (dataloader-style dicts) for a classifier with a
    :class:`~mmmask.models.backbones.PathEnsembleViT` backbone. Returns the result dict."""
    backbone = model.backbone
    names = backbone.names
    num_terms = len(names)
    base = backbone.path_mask.clone()
    custom_masks = []
    for paths in custom:
        mask = base.clone()
        for p in paths:
            mask[backbone.path_index(p)] = 0.
        custom_masks.append(mask)
    # the masks to evaluate: configured, leave-one-out per path, embedding + one path
    masks = {'full': base}
    for p, name in enumerate(names):
        loo = base.clone()
        loo[p] = 0.
        masks[f'loo/{name}'] = loo
        only = torch.zeros_like(base)
        only[0] = 1.
        only[p] = 1.
        masks[f'only/{name}'] = only
    for i, mask in enumerate(custom_masks):
        masks[f'custom/{i}'] = mask
    correct = {k: 0 for k in masks}
    norms = torch.zeros(num_terms, dtype=torch.float64)
    total_norm = torch.tensor(0., dtype=torch.float64)
    seen = 0
    scale = backbone.ensemble_scale
    scale = (scale[:, None] if scale.dim() == 1 else scale).float()
    for index, batch in enumerate(batches):
        if max_batches is not None and index >= max_batches:
            break
        data = model.data_preprocessor(batch, False)
        inputs, samples = data['inputs'], data['data_samples']
        labels = torch.cat([s.gt_label for s in samples]).to(inputs.device)
        res = backbone.forward_paths(inputs, keep_terms=True)
        terms, hw = res['terms'], res['hw']
        weighted = [t * scale[p].to(t.dtype) for p, t in enumerate(terms)]
        configured = sum(w * base[p] for p, w in enumerate(weighted))
        for p, w in enumerate(weighted):
            norms[p] += w.norm(dim=-1).mean(-1).sum().double()
        total_norm += configured.norm(dim=-1).mean(-1).sum().double()
        for key, mask in masks.items():
            acc = sum(w * mask[p] for p, w in enumerate(weighted) if mask[p] != 0)
            if not torch.is_tensor(acc):  # everything pruned
                acc = torch.zeros_like(terms[0])
            pred = _logits(model, backbone.finalize(acc, hw)).argmax(-1)
            correct[key] += (pred == labels).sum().item()
        seen += labels.numel()
    if seen == 0:
        raise RuntimeError('the probe saw no images (empty dataloader or --max-batches 0)')
    acc = {k: 100.0 * v / seen for k, v in correct.items()}
    return dict(
        num_images=seen,
        paths=names,
        configured_pruned=backbone.pruned,
        full=acc['full'],
        leave_one_out={n: acc[f'loo/{n}'] for n in names},
        only_embed_plus={n: acc[f'only/{n}'] for n in names},
        contribution={n: float(norms[p] / total_norm) for p, n in enumerate(names)},
        custom=[dict(prune=[str(p) for p in paths], accuracy=acc[f'custom/{i}'])
                for i, paths in enumerate(custom)],
    )


def build_model(cfg, checkpoint: Optional[str], device: str = 'cpu'):
    """The config's classifier with a PathEnsembleViT backbone (a plain ViT is swapped)."""
    import mmmask.models  # noqa: F401  (registers mmmask.*)
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    from mmmask.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model_cfg = cfg.model.copy()
    backbone = model_cfg.backbone.copy()
    if backbone['type'] in ('VisionTransformer', 'mmpretrain.VisionTransformer'):
        backbone['type'] = 'mmmask.PathEnsembleViT'
    model_cfg.backbone = backbone
    model = MODELS.build(model_cfg)
    if type(model.backbone).__name__ != 'PathEnsembleViT':
        raise TypeError('path_ensemble_probe needs a mmmask.PathEnsembleViT or mmpretrain '
                        f'VisionTransformer backbone, got {type(model.backbone).__name__}')
    if checkpoint and checkpoint != 'none':
        load_checkpoint(model, checkpoint, map_location='cpu', strict=False)
    return model.to(device).eval()


def format_table(result: Dict[str, object]) -> str:
    lines = [f"images: {result['num_images']}   configured pruning: "
             f"{result['configured_pruned'] or 'none'}   full ensemble top-1: "
             f"{result['full']:.2f}",
             f"{'path':<10} {'contribution':>12} {'top-1 w/o it':>13} {'delta':>7} "
             f"{'embed+it':>9}"]
    for name in result['paths']:
        loo = result['leave_one_out'][name]
        lines.append(f"{name:<10} {result['contribution'][name]:>12.3f} {loo:>13.2f} "
                     f"{loo - result['full']:>+7.2f} {result['only_embed_plus'][name]:>9.2f}")
    for item in result['custom']:
        lines.append(f"prune {' '.join(item['prune'])}: top-1 {item['accuracy']:.2f}")
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    model = build_model(cfg, args.checkpoint, args.device)
    loader_cfg = cfg.val_dataloader.copy()
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg)
    custom: List[List[str]] = [list(p) for p in args.prune]
    result = probe(model, loader, custom, args.max_batches)
    result.update(config=args.config, checkpoint=args.checkpoint)
    print(format_table(result))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
