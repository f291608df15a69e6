"""Prepare ForNet-style data for ForAug: segment foregrounds, inpaint backgrounds, store ratios.

    python tools/analysis_tools/foraug_prepare.py IMAGES OUT_ROOT [--split train]
        (--masks MASKS | --seg-config CFG --seg-checkpoint CKPT [--background-classes 0 ...])
        [--blur-radius 7] [--inpaint telea|ns] [--min-pixels 64] [--limit N] [--device cpu]
    python tools/analysis_tools/foraug_prepare.py --toy OUT_ROOT [--toy-source cls|seg] [--limit N]

``IMAGES`` is an ImageNet-style folder ``<class>/<name>.<ext>``. The object mask of each image comes
from ``MASKS/<class>/<name>.png`` (non-zero = object) or from an mmseg segmentor given by config +
checkpoint (class-agnostic: every pixel not predicted as one of ``--background-classes``). Writes
``OUT_ROOT/<split>/{foregrounds,backgrounds}/<class>/`` and ``OUT_ROOT/fg_bg_ratios_<split>.json``
(the layout ``mmmask.ForNetDataset`` reads; Nauen et al., ForAug, arXiv 2503.09399). Backgrounds
are inpainted with OpenCV (Telea) instead of the paper's LaMa / Attentive Eraser (see
``configs/foraug/README.md``). ``--toy`` builds the toy ForNet from the built-in toy digit crops
(or, ``--toy-source seg``, the toy segmentation scenes) whose masks are known.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Iterator, Optional, Sequence, Tuple

import cv2
import numpy as np

IMG_EXTS = ('.jpg', '.jpeg', '.png', '.webp', '.bmp')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('images', nargs='?', help='folder <class>/<image>')
    parser.add_argument('out_root')
    parser.add_argument('--split', default='train')
    parser.add_argument('--masks', help='folder <class>/<stem>.png of object masks')
    parser.add_argument('--seg-config', help='mmseg config of the segmentor')
    parser.add_argument('--seg-checkpoint', help='its checkpoint')
    parser.add_argument('--background-classes', type=int, nargs='+', default=[0],
                        help='segmentor classes that are background (default: 0)')
    parser.add_argument('--blur-radius', type=float, default=7.0,
                        help='Gaussian radius that grows the mask before inpainting (official 7)')
    parser.add_argument('--inpaint', choices=['telea', 'ns'], default='telea')
    parser.add_argument('--min-pixels', type=int, default=1,
                        help='masks with fewer pixels are skipped (no detection)')
    parser.add_argument('--limit', type=int, default=None, help='at most N images (per split)')
    parser.add_argument('--toy', action='store_true', help='build the toy ForNet instead')
    parser.add_argument('--toy-source', choices=['cls', 'seg'], default='cls',
                        help='toy digit crops (cls) or toy segmentation scenes (seg)')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    if not args.toy:
        if args.images is None:
            parser.error('IMAGES is required (or use --toy)')
        if bool(args.masks) == bool(args.seg_config):
            parser.error('give exactly one mask source: --masks MASKS, or --seg-config CFG '
                         '--seg-checkpoint CKPT')
        if args.seg_config and not args.seg_checkpoint:
            parser.error('--seg-config needs --seg-checkpoint')
    return args


def iter_images(root: str, limit: Optional[int] = None) -> Iterator[Tuple[str, str, str]]:
    """``(class, stem, path)`` of ``root/<class>/<image>`` in sorted order."""
    if not osp.isdir(root):
        raise FileNotFoundError(f'{root} is not a folder of <class>/<image> files')
    n = 0
    for cls in sorted(os.listdir(root)):
        if not osp.isdir(osp.join(root, cls)):
            continue
        for f in sorted(os.listdir(osp.join(root, cls))):
            if f.lower().endswith(IMG_EXTS):
                yield cls, osp.splitext(f)[0], osp.join(root, cls, f)
                n += 1
                if limit is not None and n >= limit:
                    return


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    from mmmask.datasets.foraug import (prepare_fornet, prepare_toy_fornet,
                                        segment_foreground_mmseg)
    if args.toy:
        root = prepare_toy_fornet(args.out_root, args.toy_source, limit=args.limit)
        print(f'toy ForNet at {root}')
        return dict(out_root=root)

    segmentor = None
    if args.seg_config:
        from mmseg.apis import init_model
        segmentor = init_model(args.seg_config, args.seg_checkpoint, device=args.device)

    def samples():
        for cls, stem, path in iter_images(args.images, args.limit):
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                print(f'skip unreadable {path}', file=sys.stderr)
                continue
            if segmentor is not None:
                mask = segment_foreground_mmseg(segmentor, img, args.background_classes)
            else:
                mpath = osp.join(args.masks, cls, stem + '.png')
                mask = cv2.imread(mpath, cv2.IMREAD_GRAYSCALE)
                if mask is None:
                    raise FileNotFoundError(f'no mask {mpath} for {path} (masks must be '
                                            '<MASKS>/<class>/<stem>.png, non-zero = object)')
                if mask.shape != img.shape[:2]:
                    raise ValueError(f'mask {mpath} is {mask.shape}, image is {img.shape[:2]}')
            yield cls, stem, img, mask

    info = prepare_fornet(samples(), args.out_root, args.split, args.blur_radius, args.inpaint,
                          args.min_pixels)
    print(f"wrote {info['written']} foreground/background pairs to {args.out_root}/{args.split}; "
          f"{len(info['no_detect'])} without object")
    return dict(out_root=args.out_root, written=info['written'], no_detect=info['no_detect'])


if __name__ == '__main__':
    main()
