"""Convert SYNTHIA-RAND-CITYSCAPES labels to Cityscapes trainIds for ``mmmask.SynthiaDataset``.

    python tools/dataset_converters/synthia.py data/synthia [--gt-dir GT/LABELS] [-o OUT]
        [--nproc 8]

Expected layout (the 9,400 frames of synthia-dataset.net, SYNTHIA-RAND-CITYSCAPES)::

    data/synthia/RGB/0000000.png
    data/synthia/GT/LABELS/0000000.png   16-bit PNG; the class id is in the first (R) channel,
                                         the instance id in the second

Class ids follow the release's README.txt: its Cityscapes classes are mapped to their trainIds
(as DAFormer, terrain/truck/train too, although they never occur in the labels) and everything else
(void 0, parking-slot 13, road-work 14, lanemarking 22, any other id) to 255.
Writes ``GT/LABELS/0000000_labelTrainIds.png`` beside every raw label and the rare-class-sampling
statistics (see ``_uda_labels.py``) to ``OUT`` (default: the dataset root).
"""
import argparse
import os.path as osp
import sys

import cv2
import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _uda_labels import convert_all, lookup_table  # noqa: E402

SYNTHIA_ID_TO_TRAIN_ID = {
    3: 0,    # road
    4: 1,    # sidewalk
    2: 2,    # building
    21: 3,   # wall
    5: 4,    # fence
    7: 5,    # pole
    15: 6,   # traffic light
    9: 7,    # traffic sign
    6: 8,    # vegetation
    16: 9,   # terrain (listed in the README, absent from the labels)
    1: 10,   # sky
    10: 11,  # pedestrian -> person
    17: 12,  # rider
    8: 13,   # car
    18: 14,  # truck (listed, absent)
    19: 15,  # bus
    20: 16,  # train (listed, absent)
    12: 17,  # motorcycle
    11: 18,  # bicycle
}
TABLE = lookup_table(SYNTHIA_ID_TO_TRAIN_ID, 1 << 16)


def read_synthia_ids(path: str) -> np.ndarray:
    """Class ids of a SYNTHIA label PNG (16-bit; PIL cannot read the 3-channel variant)."""
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if label is None:
        raise OSError(f'cannot read {path}')
    if label.ndim == 3:
        label = label[:, :, 2]  # cv2 is BGR: index 2 is the file's first (R) channel
    return label.astype(np.int64)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='SYNTHIA labels -> Cityscapes trainIds + class stats')
    p.add_argument('synthia_path', help='SYNTHIA-RAND-CITYSCAPES root holding RGB/ and GT/')
    p.add_argument('--gt-dir', default='GT/LABELS', help='raw label folder under synthia_path')
    p.add_argument('-o', '--out-dir', help='where the class-stats JSONs go (default: root)')
    p.add_argument('--nproc', type=int, default=4, help='worker processes')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    convert_all(args.synthia_path, args.gt_dir, args.out_dir or args.synthia_path,
                read_synthia_ids, TABLE, args.nproc)


if __name__ == '__main__':
    main()
