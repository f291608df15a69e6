"""Convert official PEM checkpoints (github.com/NiccoloCavagnero/PEM, detectron2) to mmmask.

    python tools/model_converters/pem2mmmask.py SRC DST [--task semantic|panoptic] [--config CFG]

SRC: a detectron2 ``model_final.pth`` (weights under ``model``: ``backbone.*`` — R50 in
detectron2's naming or STDC ``features.*`` — and ``sem_seg_head.{pixel_decoder,predictor}.*``).
DST gets ``{'state_dict': ..., 'meta': ...}`` with ``backbone.*`` and ``decode_head.*`` (mmseg
``EncoderDecoder`` + ``PEMSegHead``, ``--task semantic``) or ``panoptic_head.*`` (mmdet
``Mask2Former`` + ``PEMHead``, ``--task panoptic``), usable as ``load_from``. With ``--config`` the
result is checked against the model that config builds: missing or unexpected keys and shape
mismatches are reported and nothing is written (exit status 2).
"""
import argparse
import sys

from mmmask.models.converters import ConversionError
from mmmask.models.converters.common import (check_against_config, load_official_checkpoint,
                                             save_converted)
from mmmask.models.converters.pem import convert_pem

PREFIX = dict(semantic='decode_head.', panoptic='panoptic_head.')


def main() -> int:
    parser = argparse.ArgumentParser(description='Convert official PEM checkpoints to mmmask')
    parser.add_argument('src', help='official checkpoint (model_final.pth)')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--task', choices=sorted(PREFIX), default='semantic',
                        help='semantic: mmseg PEMSegHead; panoptic: mmdet PEMHead')
    parser.add_argument('--config', help='verify the result against the model of this config')
    args = parser.parse_args()

    state_dict = load_official_checkpoint(args.src)
    try:
        converted = convert_pem(state_dict, head_prefix=PREFIX[args.task])
        if args.config:
            check_against_config(converted, args.config)
    except ConversionError as e:
        print(f'pem2mmmask: {e}', file=sys.stderr)
        return 2
    save_converted(converted, args.dst, args.src, 'pem2mmmask', task=args.task)
    return 0


if __name__ == '__main__':
    sys.exit(main())
