"""Black-box transfer evaluation of a dSVA generator (ICCV 2025, arXiv 2506.21046).

Usage:
    python tools/analysis_tools/dsva_attack.py CONFIG CHECKPOINT \
        --victim VICTIM_CONFIG VICTIM_CHECKPOINT [--victim ...] \
        [--out DIR] [--eps 10/255] [--num-images N] [--num-examples 6] [--device cpu] [--seed 0]

CONFIG is a dSVA config (configs/dsva/*.py): its ``model.generator`` is built and its
``attack_dataloader`` (else ``test_dataloader``/``val_dataloader``) gives the labelled images.
CHECKPOINT is a checkpoint written by ``tools/train.py`` for that config (``generator.*`` keys)
or a bare generator ``state_dict`` (e.g. the released dSVA ``model.pth``). Each victim is any
classifier config + checkpoint (mmpretrain ``ImageClassifier`` with ResNet/ViT, mmmask models);
it sees the images at the loader's resolution, normalised by its own ``data_preprocessor``.

For every victim the tool reports top-1 accuracy on clean images, on the dSVA adversarial images
``clip(x + clip(G(x) - x, -eps, eps), 0, 1)`` and on two random-noise controls of the same budget:
``noise_linf`` (uniform random signs * eps: equal L-inf, L2 >= the attack's) and ``noise_l2``
(Gaussian rescaled per image to the L2 norm of that image's dSVA perturbation), plus fooling rates
(fraction of images whose prediction changes). Writes ``DIR/metrics.json`` and
``DIR/examples.png`` (clean / adversarial / perturbation rows, amplified to the full range).
"""
import argparse
import json
import os
import os.path as osp
from fractions import Fraction
from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn as nn


def parse_eps(text: str) -> float:
    """'10/255', '0.04' or '16' (> 1 means on the 0-255 scale) -> eps on the [0, 1] scale."""
    val = float(Fraction(text)) if '/' in text else float(text)
    return val / 255. if val > 1 else val


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='dSVA generator: transfer to black-box victims')
    parser.add_argument('config', help='dSVA config (configs/dsva/*.py)')
    parser.add_argument('checkpoint', help='generator checkpoint (tools/train.py or released)')
    parser.add_argument('--victim', nargs=2, action='append', metavar=('CONFIG', 'CHECKPOINT'),
                        required=True, help='a victim classifier; repeat for several')
    parser.add_argument('--out', default='work_dirs/dsva_attack', help='output directory')
    parser.add_argument('--eps', type=parse_eps, default=None,
                        help="L-inf budget, e.g. 10/255 (default: the config's model.eps)")
    parser.add_argument('--num-images', type=int, default=None, help='evaluate the first N')
    parser.add_argument('--num-examples', type=int, default=6, help='examples in the PNG')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--seed', type=int, default=0, help='seed of the noise controls')
    return parser.parse_args(argv)


def _scope_of(cfg) -> str:
    return cfg.get('default_scope', None) or 'mmpretrain'


def load_generator(cfg, checkpoint: str, device: str) -> nn.Module:
    """Build ``cfg.model.generator`` and load the generator weights of ``checkpoint``."""
    from mmengine.runner.checkpoint import _load_checkpoint

    from mmmask.registry import MODELS
    if 'generator' not in cfg.model:
        raise KeyError(f'{cfg.filename}: model has no `generator`: pass a dSVA config '
                       '(configs/dsva/*.py), not the victim config')
    gen = MODELS.build(cfg.model.generator)
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'generator checkpoint {checkpoint} not found: train one with '
                                f'tools/train.py {cfg.filename}')
    ckpt = _load_checkpoint(checkpoint, map_location='cpu')
    state = ckpt.get('state_dict', ckpt.get('model', ckpt))
    if any(k.startswith('generator.') for k in state):
        state = {k[len('generator.'):]: v for k, v in state.items() if k.startswith('generator.')}
    own = gen.state_dict()
    shared = [k for k in own if k in state and state[k].shape == own[k].shape]
    if len(shared) != len(own):
        missing = [k for k in own if k not in shared]
        raise KeyError(f'{checkpoint} does not fit the generator of {cfg.filename} '
                       f'({len(missing)} of {len(own)} weights missing or mis-shaped, e.g. '
                       f'{missing[:4]}); check model.generator (ngf, num_blocks) in the config')
    gen.load_state_dict({k: state[k] for k in own})
    return gen.to(device).eval()


def build_victim(cfg_path: str, checkpoint: str, device: str) -> Tuple[nn.Module, dict]:
    """A victim classifier and its input convention (``to_rgb``, ``mean``, ``std``)."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import load_checkpoint

    from mmmask.registry import MODELS
    if not osp.isfile(cfg_path):
        raise FileNotFoundError(f'victim config {cfg_path} not found')
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'victim checkpoint {checkpoint} not found (train the victim with '
                                f'tools/train.py {cfg_path} first)')
    cfg = Config.fromfile(cfg_path)
    with DefaultScope.overwrite_default_scope(_scope_of(cfg)):
        model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=False, logger='silent')
    model = model.to(device).eval()
    pre = getattr(model, 'data_preprocessor', None)
    # mmpretrain ClsDataPreprocessor: `to_rgb`; mmengine ImgDataPreprocessor: `_channel_conversion`
    to_rgb = getattr(pre, 'to_rgb', getattr(pre, '_channel_conversion', False))
    conv = {'to_rgb': bool(to_rgb), 'mean': None, 'std': None}
    if pre is not None and getattr(pre, '_enable_normalize', False):
        conv['mean'] = pre.mean.detach().to(device).view(1, -1, 1, 1)
        conv['std'] = pre.std.detach().to(device).view(1, -1, 1, 1)
    return model, conv


@torch.no_grad()
def victim_predict(model: nn.Module, conv: dict, x01_rgb: torch.Tensor) -> torch.Tensor:
    """Top-1 predictions of ``model`` for RGB images in [0, 1], fed as its own preprocessor
    would feed a loaded image (BGR unless it converts to RGB, then mean/std on 0-255)."""
    x = x01_rgb * 255.
    if not conv['to_rgb']:
        x = x.flip(1)  # the victim was trained on BGR-loaded images without conversion
    if conv['mean'] is not None:
        x = (x - conv['mean']) / conv['std']
    out = model(x, mode='tensor')
    if isinstance(out, (tuple, list)):
        out = out[-1]
    if out.dim() != 2:
        raise ValueError(f'victim returned {tuple(out.shape)} in tensor mode, expected class '
                         'scores [B, num_classes]: give a classifier config')
    return out.argmax(1)


def load_images(cfg, num_images, device) -> Tuple[torch.Tensor, torch.Tensor]:
    """RGB images in [0, 1] and labels from the config's attack/test/val dataloader."""
    import copy

    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    loader_cfg = None
    for key in ('attack_dataloader', 'test_dataloader', 'val_dataloader'):
        if cfg.get(key):
            loader_cfg = copy.deepcopy(cfg.get(key))
            break
    if loader_cfg is None:
        raise KeyError(f'{cfg.filename} has no attack_dataloader/test_dataloader/val_dataloader '
                       'with labelled images to attack')
    loader_cfg['num_workers'] = 0
    loader_cfg.pop('persistent_workers', None)
    pre = cfg.model.get('data_preprocessor') or {}
    to_rgb = bool(pre.get('to_rgb', True))
    imgs: List[torch.Tensor] = []
    labels: List[int] = []
    with DefaultScope.overwrite_default_scope(_scope_of(cfg)):
        loader = Runner.build_dataloader(loader_cfg)
        for data in loader:
            for img, ds in zip(data['inputs'], data['data_samples']):
                if 'gt_label' not in ds:
                    raise ValueError('the attack dataloader must give labelled images (gt_label)')
                imgs.append(img)
                labels.append(int(ds.gt_label[0]))
            if num_images and len(imgs) >= num_images:
                break
    if not imgs:
        raise ValueError('the attack dataloader is empty')
    if num_images:
        imgs, labels = imgs[:num_images], labels[:num_images]
    shapes = {tuple(i.shape) for i in imgs}
    if len(shapes) != 1:
        raise ValueError(f'images of different sizes {sorted(shapes)[:3]}: add a Resize to the '
                         'attack dataloader pipeline')
    x = torch.stack(imgs).float() / 255.
    if to_rgb:
        x = x.flip(1)
    return x.to(device), torch.tensor(labels, device=device)


@torch.no_grad()
def make_perturbations(gen: nn.Module, x: torch.Tensor, eps: float, seed: int,
                       batch_size: int = 50) -> Dict[str, torch.Tensor]:
    """Adversarial images and the two equal-budget noise controls, all in [0, 1]."""
    from mmmask.models.attacks.dsva import project_linf
    adv = torch.cat([project_linf(gen(x[i:i + batch_size]), x[i:i + batch_size], eps)
                     for i in range(0, len(x), batch_size)])
    g = torch.Generator(device='cpu').manual_seed(seed)
    signs = torch.randint(0, 2, x.shape, generator=g).float().mul_(2).sub_(1).to(x.device)
    noise_linf = (x + eps * signs).clamp(0, 1)
    l2 = (adv - x).flatten(1).norm(dim=1)
    gauss = torch.randn(x.shape, generator=g).to(x.device)
    gauss = gauss * (l2 / gauss.flatten(1).norm(dim=1).clamp_min(1e-12)).view(-1, 1, 1, 1)
    noise_l2 = (x + gauss).clamp(0, 1)
    return {'adv': adv, 'noise_linf': noise_linf, 'noise_l2': noise_l2}


def _norms(x: torch.Tensor, y: torch.Tensor) -> dict:
    d = (y - x).flatten(1)
    return {'linf_max': float(d.abs().max()), 'linf_max_255': float(d.abs().max() * 255),
            'l2_mean': float(d.norm(dim=1).mean())}


def save_examples(path: str, x, adv, labels, clean_pred, adv_pred, eps: float, n: int) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    n = max(1, min(n, len(x)))
    fig, axes = plt.subplots(3, n, figsize=(1.8 * n, 5.6), squeeze=False)
    for i in range(n):
        delta = (adv[i] - x[i]) / (2 * eps) + 0.5
        rows = [(x[i], f'y={int(labels[i])} p={int(clean_pred[i])}'),
                (adv[i], f'adv p={int(adv_pred[i])}'), (delta.clamp(0, 1), 'delta')]
        for r, (img, title) in enumerate(rows):
            ax = axes[r][i]
            ax.imshow(img.permute(1, 2, 0).cpu().numpy())
            ax.set_title(title, fontsize=8)
            ax.axis('off')
    fig.suptitle(f'dSVA: clean / adversarial / perturbation (eps={eps * 255:.1f}/255)',
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> dict:
    args = parse_args(argv)
    from mmengine.config import Config

    import mmmask  # noqa: F401  (registers mmmask modules)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config {args.config} not found')
    cfg = Config.fromfile(args.config)
    eps = args.eps if args.eps is not None else float(cfg.model.get('eps', 10 / 255))
    if not 0 < eps <= 1:
        raise ValueError(f'eps must be in (0, 1] (or given on the 0-255 scale), got {eps}')
    device = args.device
    gen = load_generator(cfg, args.checkpoint, device)
    x, labels = load_images(cfg, args.num_images, device)
    images = make_perturbations(gen, x, eps, args.seed)
    result = {'config': args.config, 'checkpoint': args.checkpoint, 'eps': eps,
              'eps_255': eps * 255, 'num_images': int(len(x)),
              'perturbation': {k: _norms(x, v) for k, v in images.items()}, 'victims': []}
    first_preds = None
    for vcfg, vckpt in args.victim:
        model, conv = build_victim(vcfg, vckpt, device)
        preds = {'clean': torch.cat([victim_predict(model, conv, x[i:i + 50])
                                     for i in range(0, len(x), 50)])}
        for k, v in images.items():
            preds[k] = torch.cat([victim_predict(model, conv, v[i:i + 50])
                                  for i in range(0, len(v), 50)])
        row = {'config': vcfg, 'checkpoint': vckpt}
        for k, p in preds.items():
            row[f'{k}_acc'] = float((p == labels).float().mean() * 100)
        for k in images:
            row[f'{k}_fooling_rate'] = float((preds[k] != preds['clean']).float().mean() * 100)
        result['victims'].append(row)
        if first_preds is None:
            first_preds = preds
        del model
    os.makedirs(args.out, exist_ok=True)
    png = osp.join(args.out, 'examples.png')
    save_examples(png, x, images['adv'], labels, first_preds['clean'], first_preds['adv'], eps,
                  args.num_examples)
    result['png'] = png
    with open(osp.join(args.out, 'metrics.json'), 'w') as f:
        json.dump(result, f, indent=2)
    head = (f'{"victim":40s} {"clean":>7s} {"adv":>7s} {"noise_linf":>10s} {"noise_l2":>9s} '
            f'{"fool%":>6s}')
    print(f'dSVA transfer (eps={eps * 255:.2f}/255, {len(x)} images, max |delta|='
          f'{result["perturbation"]["adv"]["linf_max_255"]:.2f}/255):')
    print(head)
    for r in result['victims']:
        print(f'{osp.basename(r["config"])[:40]:40s} {r["clean_acc"]:7.2f} {r["adv_acc"]:7.2f} '
              f'{r["noise_linf_acc"]:10.2f} {r["noise_l2_acc"]:9.2f} '
              f'{r["adv_fooling_rate"]:6.2f}')
    print(f'Wrote {osp.join(args.out, "metrics.json")} and {png}')
    return result


if __name__ == '__main__':
    main()
