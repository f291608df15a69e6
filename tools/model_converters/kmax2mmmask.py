"""Convert official kMaX-DeepLab checkpoints (github.com/bytedance/kmax-deeplab, detectron2) to the
keys of mmmask's ``PolyMaX``.

    python tools/model_converters/kmax2mmmask.py SRC DST [--task semantic] [--in-norm-to-backbone]
        [--no-backbone] [--config CFG]

SRC: a detectron2 ``.pth`` (weights under ``model``) or ``.pkl`` (pickled dict, numpy arrays
allowed) with ``backbone.*`` (official ConvNeXt) and ``sem_seg_head.{pixel_decoder,predictor}.*``.
DST gets ``{'state_dict': ..., 'meta': ...}`` with ``backbone.*`` (mmpretrain ConvNeXt),
``pixel_decoder.*``, ``heads.<task>.decoder.*`` and ``heads.<task>.aux_semantic_head.*``, usable
as ``load_from``. ``--in-norm-to-backbone`` puts the pixel decoder's input LayerNorms on the
backbone's ``norm0..3`` (configs with ``KMaXPixelDecoder(in_norm=False)``). With ``--config`` the
result is checked against the model that config builds: missing or unexpected keys and shape
mismatches are reported and nothing is written (exit status 2).
"""
import argparse
import sys

from mmmask.models.converters import ConversionError
from mmmask.models.converters.common import (check_against_config, load_official_checkpoint,
                                             save_converted)
from mmmask.models.converters.kmax import convert_kmax


def main() -> int:
    parser = argparse.ArgumentParser(description='Convert official kMaX-DeepLab checkpoints')
    parser.add_argument('src', help='official checkpoint (.pth or .pkl)')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--task', default='semantic', help='PolyMaX head of the decoder')
    parser.add_argument('--in-norm-to-backbone', action='store_true',
                        help='map pixel_decoder._in_norms to mmpretrain ConvNeXt norm0..3')
    parser.add_argument('--no-backbone', action='store_true', help='drop backbone.* keys')
    parser.add_argument('--config', help='verify the result against the model of this config')
    args = parser.parse_args()

    state_dict = load_official_checkpoint(args.src)
    try:
        converted = convert_kmax(state_dict, task=args.task,
                                 in_norm_to_backbone=args.in_norm_to_backbone,
                                 backbone=not args.no_backbone)
        if args.config:
            check_against_config(converted, args.config)
    except ConversionError as e:
        print(f'kmax2mmmask: {e}', file=sys.stderr)
        return 2
    save_converted(converted, args.dst, args.src, 'kmax2mmmask', task=args.task)
    return 0


if __name__ == '__main__':
    sys.exit(main())
