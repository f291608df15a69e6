"""Raw vs. DVT-denoised ViT feature maps as PCA-to-RGB PNGs (Denoising Vision Transformers,
ECCV 2024), plus the position-artifact statistic over the given images.

Usage:
    python tools/analysis_tools/dvt_denoise.py CONFIG CHECKPOINT IMAGES --out DIR \
        [--denoiser DVT_CKPT] [--stage1 [--num-views 768 --stage1-iters 25000 --field hashgrid]] \
        [--input-size H W] [--cfg-options k=v ...]

CONFIG/CHECKPOINT: a model whose backbone is ``mmmask.DenoisedViT`` (raw = its frozen ViT's last
layer, denoised = after its stage-2 denoiser), or any mmpretrain ``VisionTransformer`` model or
backbone config (e.g. an ``ImageClassifier``; then ``--denoiser`` gives a stage-2 checkpoint --
official ``{'denoiser': ...}`` or converted -- and/or ``--stage1`` runs the per-image stage-1
decomposition). CHECKPOINT may be ``none`` (weights from the config's init_cfg). IMAGES: an image
file or a folder. Writes ``DIR/<name>_dvt.png`` (image | raw PCA | denoised PCA [| stage-1
denoised PCA | stage-1 artifact norm]) and ``DIR/stats.json`` (per-map norms and, over all
images, the share of feature variance explained by the patch position alone: raw vs denoised).
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, Optional

import cv2
import numpy as np
import torch
from mmengine.config import Config, DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmmask.apis import list_images  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='DVT: raw vs denoised ViT features as PCA PNGs')
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="model checkpoint, or 'none'")
    parser.add_argument('images', help='an image file or a folder of images')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--denoiser', default=None,
                        help='stage-2 denoiser checkpoint (official or converted) for a plain ViT')
    parser.add_argument('--stage1', action='store_true', help='also run stage 1 per image')
    parser.add_argument('--num-views', type=int, default=768, help='stage-1 views (official 768)')
    parser.add_argument('--stage1-iters', type=int, default=25000, help='official 25000')
    parser.add_argument('--pixel-bsz', type=int, default=2048)
    parser.add_argument('--field', choices=['hashgrid', 'fourier'], default='hashgrid')
    parser.add_argument('--input-size', type=int, nargs=2, default=None,
                        help='H W (default: the ViT training size)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, key=value')
    return parser.parse_args(argv)


def pca_rgb(feat: torch.Tensor, size: Optional[tuple] = None) -> np.ndarray:
    """``[C, h, w]`` -> ``[h, w, 3]`` uint8: first 3 principal components, each min-max scaled
    (the usual DVT / DINOv2 feature visualisation), nearest-upsampled to ``size`` (H, W)."""
    c, h, w = feat.shape
    x = feat.reshape(c, -1).t().double()
    x = x - x.mean(0, keepdim=True)
    _, _, v = torch.linalg.svd(x, full_matrices=False)
    proj = x @ v[:3].t()
    if proj.shape[1] < 3:
        proj = torch.cat([proj, proj.new_zeros(proj.shape[0], 3 - proj.shape[1])], 1)
    lo, hi = proj.min(0).values, proj.max(0).values
    proj = (proj - lo) / (hi - lo).clamp_min(1e-12)
    img = (proj.reshape(h, w, 3).numpy() * 255).round().astype(np.uint8)
    if size is not None:
        img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
    return img


def heat_rgb(m: torch.Tensor, size: tuple) -> np.ndarray:
    m = m.double()
    m = (m - m.min()) / (m.max() - m.min()).clamp_min(1e-12)
    img = cv2.applyColorMap(np.uint8(255 * m.numpy()), cv2.COLORMAP_VIRIDIS)[..., ::-1]
    return cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


class FeatureSource:
    """Raw (and, when available, stage-2 denoised) last-layer ``[B, C, h, w]`` maps of a model."""

    def __init__(self, cfg: Config, checkpoint: str, denoiser: Optional[str], device: str):
        from mmengine.registry import init_default_scope
        from mmengine.runner import load_checkpoint

        import mmmask  # noqa: F401  (registers mmmask modules)
        from mmmask.models.backbones.denoised_vit import DenoisedViT
        from mmmask.models.layers.dvt import DVTDenoiser
        from mmmask.registry import MODELS
        init_default_scope(cfg.get('default_scope', 'mmpretrain'))
        if 'model' not in cfg:
            raise ValueError('the config has no `model`; give a model config (classifier, '
                             'segmentor or backbone) of a ViT or a DenoisedViT')
        model = MODELS.build(cfg.model.copy())
        if checkpoint.lower() != 'none':
            if not osp.isfile(checkpoint):
                raise FileNotFoundError(f"no such checkpoint: {checkpoint} (or pass 'none')")
            load_checkpoint(model, checkpoint, map_location='cpu', strict=False)
        else:
            model.init_weights()  # the config's init_cfg (e.g. Pretrained) or random weights
        backbone = getattr(model, 'backbone', model)
        self.denoiser = None
        if isinstance(backbone, DenoisedViT):
            self.vit, self.denoiser = backbone.vit, backbone.denoiser
        elif hasattr(backbone, 'layers') and hasattr(backbone, 'patch_resolution') \
                and hasattr(backbone, 'out_type'):
            self.vit = backbone
        else:
            raise TypeError(f'{type(backbone).__name__} is neither mmmask.DenoisedViT nor an '
                            'mmpretrain VisionTransformer: DVT needs ViT patch features')
        self.vit.out_type = 'featmap'
        self.vit.out_indices = [len(self.vit.layers) - 1]
        if denoiser is not None:
            from mmmask.models.converters.dvt import load_dvt_denoiser_checkpoint
            sd = load_dvt_denoiser_checkpoint(denoiser)
            blocks = {k.split('.')[1] for k in sd if k.startswith('blocks.')}
            pe = sd.get('pos_embed')
            side = int(round(pe.shape[1]**0.5)) if pe is not None else 1
            if pe is not None and side * side != pe.shape[1]:
                raise ValueError(f'{denoiser}: positional embedding of {pe.shape[1]} tokens is '
                                 'not a square grid; load it into a DenoisedViT config with '
                                 'denoiser=dict(noise_map_size=(H, W), pe_resample="exact")')
            self.denoiser = DVTDenoiser((side, side), self.vit.embed_dims,
                                        num_blocks=len(blocks), enable_pe=pe is not None)
            self.denoiser.load_state_dict(sd, strict=True)
        self.vit.to(device).eval()
        if self.denoiser is not None:
            self.denoiser.to(device).eval()
        pre = cfg.model.get('data_preprocessor', None) or cfg.get('data_preprocessor', None) or {}
        self.mean = torch.tensor(pre.get('mean', [123.675, 116.28, 103.53])).view(1, 3, 1, 1)
        self.std = torch.tensor(pre.get('std', [58.395, 57.12, 57.375])).view(1, 3, 1, 1)
        self.to_rgb = pre.get('to_rgb', pre.get('bgr_to_rgb', True))
        self.device = device
        patch = self.vit.patch_embed.projection.kernel_size
        self.patch = patch[0]
        self.default_size = tuple(r * p for r, p in zip(self.vit.patch_resolution, patch))

    def normalise(self, img_bgr: np.ndarray) -> torch.Tensor:
        img = img_bgr[..., ::-1] if self.to_rgb else img_bgr
        x = torch.from_numpy(np.ascontiguousarray(img)).float().permute(2, 0, 1)[None]
        return ((x - self.mean) / self.std).to(self.device)

    @torch.no_grad()
    def raw(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit(x)[-1]

    @torch.no_grad()
    def denoise(self, feat: torch.Tensor) -> Optional[torch.Tensor]:
        return None if self.denoiser is None else self.denoiser.forward_featmap(feat)


def run_stage1(src: FeatureSource, x: torch.Tensor, args) -> Dict[str, torch.Tensor]:
    """Official stage 1 on one normalised image ``[1, 3, H, W]``: ``num_views`` random crops/flips
    + the full image through the frozen ViT, then :func:`fit_single_image`."""
    from mmmask.models.layers.dvt import fit_single_image, make_patch_coordinates
    from mmmask.models.layers.dvt import random_resized_crop_flip
    size = x.shape[-2:]
    views, coords = random_resized_crop_flip(x[0].cpu(), args.num_views, size, src.patch,
                                             src.patch, seed=0)
    feats = [src.raw(views[i:i + 32].to(src.device)).permute(0, 2, 3, 1).cpu()
             for i in range(0, len(views), 32)]
    full = src.raw(x).permute(0, 2, 3, 1).cpu()
    h, w = full.shape[1:3]
    feats = torch.cat(feats + [full])
    coords = torch.cat([coords, make_patch_coordinates(h, w, 0, 1)[None]])
    field_cfg = dict(encoding=args.field)
    res = fit_single_image(feats, coords, num_iters=args.stage1_iters, pixel_bsz=args.pixel_bsz,
                           warmup_iters=max(1, args.stage1_iters // 10), field_cfg=field_cfg,
                           device=src.device, log=print)
    return dict(denoised=res['denoised'][-1].permute(2, 0, 1),
                artifacts=res['artifacts'].permute(2, 0, 1))


def main(argv=None) -> dict:
    args = parse_args(argv)
    from mmmask.models.layers.dvt import artifact_statistic
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    src = FeatureSource(cfg, args.checkpoint, args.denoiser, args.device)
    if src.denoiser is None and not args.stage1:
        raise ValueError('nothing to denoise with: the model is a plain ViT; pass --denoiser '
                         'CKPT (a stage-2 denoiser) and/or --stage1')
    size = tuple(args.input_size) if args.input_size else src.default_size
    if size[0] % src.patch or size[1] % src.patch:
        raise ValueError(f'--input-size {size} must be a multiple of the patch size {src.patch}')
    os.makedirs(args.out, exist_ok=True)
    paths = list_images(args.images)
    records, raws, dens = [], [], []
    for path in paths:
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f'cannot read image {path}')
        img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
        x = src.normalise(img)
        raw = src.raw(x)[0].cpu()
        den = src.denoise(raw[None].to(src.device))
        panels = [img[..., ::-1], pca_rgb(raw, size)]
        rec = dict(image=path, raw_norm=float(raw.norm(dim=0).mean()))
        if den is not None:
            den = den[0].cpu()
            panels.append(pca_rgb(den, size))
            rec['denoised_norm'] = float(den.norm(dim=0).mean())
            rec['change'] = float((den - raw).norm() / raw.norm())
            dens.append(den)
        raws.append(raw)
        if args.stage1:
            s1 = run_stage1(src, x, args)
            panels += [pca_rgb(s1['denoised'], size), heat_rgb(s1['artifacts'].norm(dim=0), size)]
            rec['stage1_change'] = float((s1['denoised'] - raw).norm() / raw.norm())
            if den is None:
                dens.append(s1['denoised'])
        name = osp.splitext(osp.relpath(path, args.images if osp.isdir(args.images)
                                        else osp.dirname(path)))[0].replace(os.sep, '_')
        dst = osp.join(args.out, f'{name}_dvt.png')
        sep = np.full((size[0], 2, 3), 255, np.uint8)
        row = [p for panel in panels for p in (panel, sep)][:-1]
        cv2.imwrite(dst, np.ascontiguousarray(np.concatenate(row, axis=1)[..., ::-1]))
        rec['png'] = dst
        records.append(rec)
    summary = dict(num_images=len(records),
                   panels='image | raw PCA' + (' | denoised PCA' if src.denoiser else '')
                   + (' | stage-1 denoised PCA | stage-1 artifact norm' if args.stage1 else ''))
    if len(raws) > 1:
        summary['position_variance_raw'] = artifact_statistic(
            torch.stack(raws).permute(0, 2, 3, 1))
        summary['position_variance_denoised'] = artifact_statistic(
            torch.stack(dens).permute(0, 2, 3, 1))
    from mmmask.apis import write_tool_report
    print('DVT feature maps:', len(records), 'PNG files in', args.out)
    return write_tool_report(osp.join(args.out, 'stats.json'), summary, records, 'DVT stats')


if __name__ == '__main__':
    main()
