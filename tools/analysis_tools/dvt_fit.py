"""DVT stages 1 and 2 on a folder of images (Denoising Vision Transformers, ECCV 2024):
per-image decomposition of a frozen ViT's features (stage 1, official ``main_img_denoising.py``),
then the generalisable denoiser trained on the stage-1 outputs (stage 2, ``main_denoiser.py``).

Usage:
    python tools/analysis_tools/dvt_fit.py CONFIG CHECKPOINT IMAGES --work-dir DIR \
        [--num-images 10000] [--num-views 768] [--stage1-iters 25000] [--field hashgrid] \
        [--stage2-iters 50000] [--batch-size 16] [--lr LR] [--input-size H W]

CONFIG/CHECKPOINT: any mmpretrain ``VisionTransformer`` model (or a DenoisedViT, whose frozen ViT is
used); CHECKPOINT may be ``none``. Writes ``DIR/features/<name>.pt`` (raw and stage-1 denoised
``[h, w, C]`` maps of the full image; reused when present), ``DIR/denoiser.pth`` (mmmask
``DVTDenoiser`` keys, for ``DenoisedViT(denoiser_checkpoint=...)`` or ``dvt_denoise.py
--denoiser``) and ``DIR/fit_stats.json`` (losses; position-explained variance of the raw,
stage-1 and stage-2 maps of the images).
"""
import argparse
import json
import os
import os.path as osp
import sys

import cv2
import torch
from mmengine.config import Config, DictAction

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from dvt_denoise import FeatureSource, run_stage1  # noqa: E402

from mmmask.apis import list_images  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='DVT stage 1 (per image) + stage 2 (denoiser)')
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="ViT model checkpoint, or 'none'")
    parser.add_argument('images', help='a folder of training images (or one image)')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--num-images', type=int, default=10000,
                        help='first N images (official: 10k VOC images)')
    parser.add_argument('--num-views', type=int, default=768)
    parser.add_argument('--stage1-iters', type=int, default=25000)
    parser.add_argument('--pixel-bsz', type=int, default=2048)
    parser.add_argument('--field', choices=['hashgrid', 'fourier'], default='hashgrid')
    parser.add_argument('--stage2-iters', type=int, default=50000, help='official 50000')
    parser.add_argument('--batch-size', type=int, default=16, help='official 16 per GPU')
    parser.add_argument('--lr', type=float, default=None,
                        help='stage-2 lr (default: official 2e-4 * sqrt(batch / 256))')
    parser.add_argument('--num-blocks', type=int, default=1)
    parser.add_argument('--input-size', type=int, nargs=2, default=None)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    from mmmask.models.layers.dvt import DVTDenoiser, artifact_statistic, train_dvt_denoiser
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    src = FeatureSource(cfg, args.checkpoint, None, args.device)
    src.denoiser = None  # stage 2 is trained here from scratch
    size = tuple(args.input_size) if args.input_size else src.default_size
    if size[0] % src.patch or size[1] % src.patch:
        raise ValueError(f'--input-size {size} must be a multiple of the patch size {src.patch}')
    paths = list_images(args.images)[:args.num_images]
    feat_dir = osp.join(args.work_dir, 'features')
    os.makedirs(feat_dir, exist_ok=True)
    raws, targets = [], []
    for k, path in enumerate(paths):
        name = osp.splitext(osp.relpath(path, args.images if osp.isdir(args.images)
                                        else osp.dirname(path)))[0].replace(os.sep, '_')
        cache = osp.join(feat_dir, f'{name}.pt')
        if osp.isfile(cache):
            item = torch.load(cache, map_location='cpu')
        else:
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                raise ValueError(f'cannot read image {path}')
            x = src.normalise(cv2.resize(img, (size[1], size[0]),
                                         interpolation=cv2.INTER_CUBIC))
            raw = src.raw(x)[0].permute(1, 2, 0).cpu()
            s1 = run_stage1(src, x, args)
            item = dict(raw=raw, denoised=s1['denoised'].permute(1, 2, 0).contiguous())
            torch.save(item, cache)
        raws.append(item['raw'])
        targets.append(item['denoised'])
        print(f'stage 1: {k + 1}/{len(paths)} {path}')
    raws, targets = torch.stack(raws), torch.stack(targets)
    torch.manual_seed(args.seed)
    h, w = raws.shape[1:3]
    denoiser = DVTDenoiser((h, w), raws.shape[-1], num_blocks=args.num_blocks).to(args.device)
    losses = train_dvt_denoiser(denoiser, raws, targets, args.stage2_iters,
                                batch_size=args.batch_size, lr=args.lr, seed=args.seed, log=print)
    with torch.no_grad():
        outs = torch.cat([denoiser(raws[i:i + 64].to(args.device)).cpu()
                          for i in range(0, len(raws), 64)])
    dst = osp.join(args.work_dir, 'denoiser.pth')
    torch.save({'state_dict': {k: v.cpu() for k, v in denoiser.state_dict().items()},
                'meta': dict(noise_map_size=[h, w], feat_dim=raws.shape[-1],
                             num_blocks=args.num_blocks, config=args.config,
                             num_images=len(paths))}, dst)
    stats = dict(num_images=len(paths), stage2_first_loss=losses[0], stage2_last_loss=losses[-1])
    if len(paths) > 1:
        stats.update(position_variance_raw=artifact_statistic(raws),
                     position_variance_stage1=artifact_statistic(targets),
                     position_variance_stage2=artifact_statistic(outs))
    with open(osp.join(args.work_dir, 'fit_stats.json'), 'w') as f:
        json.dump(stats, f, indent=1)
    print('DVT denoiser written to', dst)
    print('DVT fit stats:', ' '.join(f'{k}={v:.4f}' if isinstance(v, float) else f'{k}={v}'
                                     for k, v in stats.items()))
    return stats


if __name__ == '__main__':
    main()
