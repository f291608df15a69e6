"""Convert the multi-task NYUD-v2 release (NYUD-MT) to mmmask's NYU multi-task layout.

    python tools/dataset_converters/nyud_mt.py SRC_ROOT [-o data/nyu] [--splits train val]
        [--nproc N] [--depth-scale 1000] [--negate-normal-axes {x,y,z} ...]

NYUD-MT is the 795 train / 654 val split of the labelled NYUD-v2 frames with semantic, depth,
surface-normal and edge labels used by MTI-Net, ATRC, InvPT and Multi-Task-Learning-PyTorch
(``NYUD_MT.tgz``, Google-Drive id ``14EAEMXmd3zs2hIMY63UhHPSFPDAkiTzw``). Its format, as read by
the loaders ``SimonVandenhende/Multi-Task-Learning-PyTorch`` ``data/nyud.py`` (+
``data/custom_transforms.py``, ``evaluation/eval_depth.py``, ``evaluation/eval_normals.py``) and
``brdav/atrc`` ``src/data/nyud.py``::

    SRC_ROOT/
        gt_sets/{train,val}.txt      one frame id (stem) per line
        images/<id>.jpg              RGB frame (the loaders use 425x560 frames, the NYU border
                                     crop; the size is kept as is here)
        segmentation/<id>.png        NYU-40 labels 0..40, 0 = void (the loaders map
                                     ``v - 1`` with 0 -> 255 ignore, i.e. a 40-way task)
        depth/<id>.npy               float HxW metric depth in metres, 0 = invalid (the loaders
                                     mark ``depth == 0`` as ignore; the published RMSEs ~0.5
                                     are in metres)
        normals/<id>.npy             float HxWx3 unit normals in [-1, 1], all-zero = invalid
                                     (``AddIgnoreRegions``/``eval_normals`` treat norm 0 as
                                     ignore)
        edge/<id>.npy                edge maps (not converted: mmmask has no edge task)

The older ASTMT variant (``facebookresearch/astmt`` ``fblib/dataloaders/nyud.py``: ``.mat``
segmentation/depth, ``.jpg`` normals, ``.png`` edges) is *not* read; it is reported as such.

Output (``mmmask.NYUv2MultiTaskDataset``, ``configs/_base_/datasets/nyu_multitask.py``), with
NYUD-MT ``val`` written to the ``test`` folders::

    OUT/images/{train,test}/<id>.jpg        the source JPEG, copied byte for byte
    OUT/semantic40/{train,test}/<id>.png    uint8 grey, 0 = unlabelled, k = NYU-40 class k
                                            (the source values as they are; anything outside
                                            0..40 becomes 0, with a warning)
    OUT/annotations/{train,test}/<id>.png   uint16 depth in mm = round(depth * --depth-scale);
                                            0 / negative / non-finite -> 0 (invalid)
    OUT/normals/{train,test}/<id>.png       RGB uint8 round((n + 1) / 2 * 255); invalid -> (0,0,0)

Surface-normal orientation -- NOT ESTABLISHED, KEPT AS IN THE SOURCE:
    None of the loaders states the axis convention of ``normals/*.npy``. What the code does show:
    the horizontal flip negates channel 0 (so channel 0 is the image-horizontal axis), and the
    in-plane rotation of ``ScaleNRotate`` treats channels 0/1 as the image-plane pair (its sign
    would fit channel 1 = image-down, but it is only used with +-2 degrees and is weak evidence).
    The signs of y and z (up vs. down, towards vs. away from the camera) cannot be read off the
    code. So this converter writes channels 0, 1, 2 unchanged as R, G, B (mmmask's x, y, z), and
    prints a warning. mmmask expects x right / y down / z forward (OpenCV camera frame). To help
    you decide, the summary prints orientation diagnostics computed on the converted normals:
    the mean normal on ``floor`` pixels (NYU-40 label 2; must have y < 0, pointing up, in
    mmmask's frame) and on ``ceiling`` pixels (label 22; y > 0), and the share of valid pixels
    with z < 0 (visible surfaces face the camera, so this must be a clear majority). If they
    disagree, re-run with ``--negate-normal-axes`` (e.g. ``y z``), which negates those components
    before encoding; the tool suggests the axes to negate.
"""
import argparse
import os
import os.path as osp
import shutil
import sys
from collections import Counter
from multiprocessing import Pool
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
from PIL import Image

#: the source folders and the suffix of each frame's file in them
SRC_FOLDERS = dict(images='.jpg', segmentation='.png', depth='.npy', normals='.npy')
#: our output folders (as in configs/_base_/datasets/nyu_multitask.py)
OUT_FOLDERS = ('images', 'semantic40', 'annotations', 'normals')
NUM_CLASSES = 40
FLOOR, CEILING = 2, 22  # NYU-40 labels
AXES = 'xyz'


class LayoutError(Exception):
    """SRC_ROOT is not an NYUD-MT tree (or a frame in it is malformed)."""


def out_split(split: str) -> str:
    """Our folder name of an NYUD-MT split (``val`` is our ``test``)."""
    return 'test' if split == 'val' else split


def check_layout(src: str, splits: Sequence[str]) -> Dict[str, List[str]]:
    """The stems of each split; raises :class:`LayoutError` naming what is missing."""
    expected = ('expected SRC_ROOT/{gt_sets/<split>.txt, images/<id>.jpg, segmentation/<id>.png, '
                'depth/<id>.npy, normals/<id>.npy} (the NYUD_MT.tgz release read by '
                'Multi-Task-Learning-PyTorch / ATRC / InvPT)')
    if not osp.isdir(src):
        raise LayoutError(f'{src} is not a directory; {expected}')
    missing = [d for d in ('gt_sets', *SRC_FOLDERS) if not osp.isdir(osp.join(src, d))]
    if missing:
        hint = ''
        inner = osp.join(src, 'NYUD_MT')
        if osp.isdir(inner):
            hint = f' (did you mean {inner}?)'
        raise LayoutError(f'{src}: missing folder(s) {missing}{hint}; {expected}')
    seg_dir = osp.join(src, 'segmentation')
    if not any(f.endswith('.png') for f in os.listdir(seg_dir)) and \
            any(f.endswith('.mat') for f in os.listdir(seg_dir)):
        raise LayoutError(f'{seg_dir} holds .mat files: this is the older ASTMT variant of '
                          f'NYUD-MT (.mat segmentation/depth, .jpg normals), which this tool does '
                          f'not read; {expected}')
    stems = {}
    for split in splits:
        list_file = osp.join(src, 'gt_sets', f'{split}.txt')
        if not osp.isfile(list_file):
            have = sorted(f[:-4] for f in os.listdir(osp.join(src, 'gt_sets'))
                          if f.endswith('.txt'))
            raise LayoutError(f'split list {list_file} not found (gt_sets has {have}); {expected}')
        with open(list_file) as f:
            names = [line.strip() for line in f if line.strip()]
        if not names:
            raise LayoutError(f'{list_file} lists no frames')
        absent = [osp.join(folder, s + suffix) for s in names
                  for folder, suffix in SRC_FOLDERS.items()
                  if not osp.isfile(osp.join(src, folder, s + suffix))]
        if absent:
            raise LayoutError(f'{len(absent)} file(s) of split {split!r} missing under {src}, '
                              f'e.g. {absent[:5]}; {expected}')
        stems[split] = names
    return stems


def encode_normals(normal: np.ndarray, negate: str = '') -> np.ndarray:
    """HxWx3 float normals -> HxWx3 uint8 ``round((n + 1) / 2 * 255)`` (R, G, B = x, y, z).

    Pixels with a zero-length or non-finite vector are invalid and become (0, 0, 0); a valid
    vector that would round to (0, 0, 0) is nudged to (1, 1, 1) so that it stays valid.
    """
    normal = normal.astype(np.float64)
    for axis in negate:
        normal[..., AXES.index(axis)] *= -1
    finite = np.isfinite(normal).all(axis=-1)
    normal = np.where(finite[..., None], normal, 0.0)
    valid = finite & (np.linalg.norm(normal, axis=-1) > 1e-6)
    enc = np.clip(np.rint((normal + 1.0) / 2.0 * 255.0), 0, 255).astype(np.uint8)
    enc[~valid] = 0
    enc[valid & (enc == 0).all(axis=-1)] = 1
    return enc


def depth_to_mm(depth: np.ndarray, scale: float) -> np.ndarray:
    """Float depth (source units, times ``scale`` = millimetres) -> uint16 mm, 0 = invalid."""
    depth = depth.astype(np.float64) * scale
    depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0.0)
    return np.clip(np.rint(depth), 0, 65535).astype(np.uint16)


def convert_frame(job: tuple) -> dict:
    """Convert one frame; returns its statistics (or ``{'error': ...}``)."""
    src, out, split, stem, depth_scale, negate = job
    folder = out_split(split)
    name = f'{split}/{stem}'
    try:
        img_src = osp.join(src, 'images', stem + '.jpg')
        img = cv2.imread(img_src, cv2.IMREAD_UNCHANGED)
        if img is None:
            raise LayoutError(f'{img_src}: not a readable image')
        h, w = img.shape[:2]

        seg_src = osp.join(src, 'segmentation', stem + '.png')
        with Image.open(seg_src) as im:
            if im.mode not in ('L', 'P', 'I', 'I;16'):
                raise LayoutError(f'{seg_src}: expected a single-channel label PNG, got mode '
                                  f'{im.mode}')
            seg = np.array(im)
        depth = np.load(osp.join(src, 'depth', stem + '.npy'))
        if depth.ndim == 3 and depth.shape[2] == 1:
            depth = depth[..., 0]
        normal = np.load(osp.join(src, 'normals', stem + '.npy'))
        for what, arr, shape in (('segmentation', seg, (h, w)), ('depth', depth, (h, w)),
                                 ('normals', normal, (h, w, 3))):
            if arr.shape != shape:
                raise LayoutError(f'{what} of {name} has shape {arr.shape}, expected {shape} '
                                  f'(image {h}x{w})')

        out_of_range = (seg < 0) | (seg > NUM_CLASSES)
        label = np.where(out_of_range, 0, seg).astype(np.uint8)
        mm = depth_to_mm(depth, depth_scale)
        enc = encode_normals(normal, negate)

        paths = {k: osp.join(out, k, folder, stem + ('.jpg' if k == 'images' else '.png'))
                 for k in OUT_FOLDERS}
        for p in paths.values():
            os.makedirs(osp.dirname(p), exist_ok=True)
        shutil.copyfile(img_src, paths['images'])
        ok = cv2.imwrite(paths['semantic40'], label)
        ok &= cv2.imwrite(paths['annotations'], mm)
        ok &= cv2.imwrite(paths['normals'], enc[..., ::-1])  # OpenCV writes B, G, R
        if not ok:
            raise OSError(f'could not write the labels of {name} under {out}')

        valid_n = (enc != 0).any(axis=-1)
        decoded = enc.astype(np.float64) / 255.0 * 2 - 1
        stats = dict(
            split=split, size=(h, w), pixels=h * w, bad_labels=int(out_of_range.sum()),
            unlabelled=int((label == 0).sum()), classes=set(np.unique(label).tolist()) - {0},
            depth_valid=int((mm > 0).sum()), depth_clipped=int((depth * depth_scale > 65535.5)
                                                               .sum()),
            depth_min=float(mm[mm > 0].min()) if (mm > 0).any() else None,
            depth_max=float(mm.max()), normal_valid=int(valid_n.sum()),
            normal_zneg=int((decoded[..., 2] < 0)[valid_n].sum()))
        for key, cls in (('floor', FLOOR), ('ceiling', CEILING)):
            sel = valid_n & (label == cls)
            stats[key] = (decoded[sel].sum(axis=0), int(sel.sum()))
        return stats
    except (LayoutError, OSError, ValueError) as e:
        return dict(split=split, error=f'{name}: {e}')


def summarise(results: List[dict], out: str, negate: str) -> List[str]:
    """Print the per-split summary; returns the orientation warnings."""
    warnings = []
    for split in dict.fromkeys(r['split'] for r in results):
        rs = [r for r in results if r['split'] == split]
        pixels = sum(r['pixels'] for r in rs)
        sizes = Counter(f'{h}x{w}' for h, w in (r['size'] for r in rs))
        classes = set().union(*(r['classes'] for r in rs))
        dmin = min((r['depth_min'] for r in rs if r['depth_min'] is not None), default=0)
        dmax = max(r['depth_max'] for r in rs)
        print(f'{split} -> {out_split(split)}: {len(rs)} frames, sizes {dict(sizes)}')
        print(f'  semantic40 : {len(classes)} of {NUM_CLASSES} classes present, '
              f'{100 * sum(r["unlabelled"] for r in rs) / pixels:.1f}% unlabelled (0)')
        print(f'  depth (mm) : {100 * sum(r["depth_valid"] for r in rs) / pixels:.1f}% valid, '
              f'range {dmin:.0f}..{dmax:.0f}')
        print(f'  normals    : {100 * sum(r["normal_valid"] for r in rs) / pixels:.1f}% valid')
        bad = sum(r['bad_labels'] for r in rs)
        if bad:
            print(f'  WARNING: {bad} label pixels outside 0..{NUM_CLASSES} were set to 0')
        clipped = sum(r['depth_clipped'] for r in rs)
        if clipped:
            print(f'  WARNING: {clipped} depth pixels above 65.535 m were clipped; is '
                  f'--depth-scale right (source in metres -> 1000)?')
        if dmax and dmax < 100:
            print(f'  WARNING: the largest depth is {dmax:.0f} mm; is the source in metres '
                  f'(--depth-scale 1000)?')
        if sizes.keys() != {'480x640'}:
            print("  NOTE: frames are not 480x640; mmseg DepthMetric crop_type='nyu_crop' "
                  '(rows 45:471, cols 41:601 of a 480x640 frame) does not fit them; these '
                  'frames are already border-cropped, use crop_type=None')

    # orientation diagnostics over all converted frames (in mmmask's x, y, z after --negate)
    valid = sum(r['normal_valid'] for r in results)
    if valid:
        zneg = sum(r['normal_zneg'] for r in results) / valid
        print(f'normal orientation diagnostics (written frame, after negating {negate or "none"}):')
        print(f'  z < 0 (facing the camera) on {100 * zneg:.1f}% of valid pixels '
              f'(expected: a clear majority)')
        suggest = set()
        if zneg < 0.5:
            suggest.add('z')
        for key, want in (('floor', -1), ('ceiling', 1)):
            total = sum((r[key][0] for r in results if r[key][1]), np.zeros(3))
            n = sum(r[key][1] for r in results)
            if n >= 100:  # too few pixels say nothing
                mean = total / n
                print(f'  mean normal on {key} pixels: ({mean[0]:+.2f}, {mean[1]:+.2f}, '
                      f'{mean[2]:+.2f}) over {n} px (expected y {"<" if want < 0 else ">"} 0)')
                if np.sign(mean[1]) == -want and abs(mean[1]) > 0.3:
                    suggest.add('y')
        if suggest:
            fix = ''.join(sorted(set(negate) ^ suggest))
            warnings.append(
                'the diagnostics say the source normals are not in x right / y down / z forward: '
                f're-run with --negate-normal-axes {" ".join(fix) or "(none)"}')
    warnings.append(
        'the axis convention of NYUD-MT normals is not documented by its loaders; the normals '
        'were written in the SOURCE orientation'
        + (f' with {negate} negated' if negate else '')
        + '. Check the diagnostics above before training (see the docstring).')
    return warnings


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description='Convert NYUD-MT (NYUD_MT.tgz) to the mmmask NYU multi-task layout')
    parser.add_argument('src', help='NYUD-MT root (holds gt_sets/, images/, depth/, ...)')
    parser.add_argument('-o', '--out', default='data/nyu', help='output root (data/nyu)')
    parser.add_argument('--splits', nargs='+', default=['train', 'val'],
                        help='gt_sets lists to convert (val is written as test)')
    parser.add_argument('--nproc', type=int, default=1, help='worker processes')
    parser.add_argument('--depth-scale', type=float, default=1000.0,
                        help='source depth units to millimetres (source in metres: 1000)')
    parser.add_argument('--negate-normal-axes', nargs='*', default=[], choices=list(AXES),
                        help='negate these normal components before encoding (default: none, '
                        'the source orientation is kept)')
    args = parser.parse_args(argv)
    negate = ''.join(a for a in AXES if a in args.negate_normal_axes)
    try:
        stems = check_layout(args.src, args.splits)
    except LayoutError as e:
        print(f'nyud_mt: {e}', file=sys.stderr)
        return 2
    cv2.setNumThreads(1)
    jobs = [(args.src, args.out, split, stem, args.depth_scale, negate)
            for split in args.splits for stem in stems[split]]
    if args.nproc > 1:
        with Pool(args.nproc) as pool:
            results = pool.map(convert_frame, jobs, chunksize=8)
    else:
        results = [convert_frame(job) for job in jobs]
    errors = [r['error'] for r in results if 'error' in r]
    if errors:
        print(f'nyud_mt: {len(errors)} frame(s) failed:', file=sys.stderr)
        for e in errors[:20]:
            print(f'  {e}', file=sys.stderr)
        return 2
    print(f'NYUD-MT {args.src} -> {args.out}')
    for w in summarise(results, args.out, negate):
        print(f'WARNING: {w}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
