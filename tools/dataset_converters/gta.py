"""Convert GTA5 ("Playing for Data") labels to Cityscapes trainIds for ``mmmask.GTADataset``.

    python tools/dataset_converters/gta.py data/gta [--gt-dir labels] [-o OUT] [--nproc 8]

Expected layout (the 24,966 frames of download.visinf.tu-darmstadt.de/data/from_games)::

    data/gta/images/00001.png
    data/gta/labels/00001.png     palette ("P") PNG whose indices are Cityscapes label ids

Writes ``labels/00001_labelTrainIds.png`` (19 classes, 255 = ignore) beside every raw label and
the rare-class-sampling statistics (``sample_class_stats.json`` and two derived files, see
``_uda_labels.py``) to ``OUT`` (default: the dataset root).
"""
import argparse
import os.path as osp
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _uda_labels import convert_all, lookup_table  # noqa: E402

# Cityscapes labelId -> trainId (cityscapesScripts' labels.py); everything else is ignored.
CITYSCAPES_ID_TO_TRAIN_ID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
    26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18
}
TABLE = lookup_table(CITYSCAPES_ID_TO_TRAIN_ID, 256)


def read_gta_ids(path: str) -> np.ndarray:
    """Palette indices of the label PNG (= Cityscapes label ids), not the palette colours."""
    with Image.open(path) as im:
        if im.mode not in ('P', 'L'):
            raise ValueError(f'{path}: expected a palette/grey label PNG, got mode {im.mode}')
        return np.array(im)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='GTA5 labels -> Cityscapes trainIds + class stats')
    p.add_argument('gta_path', help='GTA5 root holding images/ and labels/')
    p.add_argument('--gt-dir', default='labels', help='raw label folder under gta_path')
    p.add_argument('-o', '--out-dir', help='where the class-stats JSONs go (default: gta_path)')
    p.add_argument('--nproc', type=int, default=4, help='worker processes')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    convert_all(args.gta_path, args.gt_dir, args.out_dir or args.gta_path, read_gta_ids, TABLE,
                args.nproc)


if __name__ == '__main__':
    main()
