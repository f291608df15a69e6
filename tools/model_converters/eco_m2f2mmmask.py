"""Convert official ECO-M2F checkpoints (github.com/GYeow/ECO-M2F, detectron2) to mmmask/mmdet.

    python tools/model_converters/eco_m2f2mmmask.py SRC DST [--config CONFIG]

SRC: a released ``.pth`` (weights under ``model``) or a detectron2 ``.pkl``. DST gets
``{'state_dict': ..., 'meta': ...}`` with mmdet ``Mask2Former`` keys (``backbone.*`` for Swin,
``panoptic_head.pixel_decoder.*`` for :class:`EarlyExitMSDeformAttnPixelDecoder` incl. the gate,
``panoptic_head.*`` for the transformer decoder), usable as ``load_from`` or with tools/test.py.
With ``--config`` the result is checked against the model that config builds (missing keys and
shape mismatches are reported).
"""
import argparse
import os.path as osp
import sys

from mmmask.models.converters import ConversionError, convert_eco_m2f
from mmmask.models.converters.common import (check_complete, load_official_checkpoint,
                                             save_converted)


def main() -> int:
    parser = argparse.ArgumentParser(description='Convert official ECO-M2F checkpoints')
    parser.add_argument('src', help='official checkpoint (.pth or detectron2 .pkl)')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--config', help='verify the result against the model of this config')
    args = parser.parse_args()
    try:
        converted = convert_eco_m2f(load_official_checkpoint(args.src))
        if args.config:
            from mmengine.config import Config
            from mmengine.registry import init_default_scope
            cfg = Config.fromfile(args.config)
            init_default_scope(cfg.get('default_scope', 'mmdet'))
            from mmdet.registry import MODELS
            cfg.model.backbone.init_cfg = None
            check_complete(converted, MODELS.build(cfg.model).state_dict(),
                           osp.basename(args.config))
    except ConversionError as e:
        print(f'eco_m2f2mmmask: {e}', file=sys.stderr)
        return 2
    save_converted(converted, args.dst, args.src, 'eco_m2f2mmmask')
    return 0


if __name__ == '__main__':
    sys.exit(main())
