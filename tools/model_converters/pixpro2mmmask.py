"""Convert official PixPro checkpoints (github.com/zdaxie/PixPro) to mmmask.

    python tools/model_converters/pixpro2mmmask.py SRC DST [--backbone-only]
        [--config configs/pixpro/pixpro_resnet50_8xb128-lars-coslr-400e_in1k.py]

SRC: an official pretraining checkpoint (``ckpt_epoch_400.pth``, weights under ``model``). DST gets
``{'state_dict': ..., 'meta': ...}`` loadable into ``mmmask.PixPro`` (``backbone.*``, ``neck.*``,
``head.ppm.*``, key branch ``teacher.module.{0,1}.*``), e.g. as ``load_from`` to resume; with
``--backbone-only`` only the online ResNet-50 ``backbone.*`` (mmpretrain/mmdet/mmseg ``ResNet``
keys) for ``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``. With
``--config`` the full conversion is checked against the model that config builds.
"""
import argparse
import sys

from mmmask.models.converters.common import (ConversionError, check_against_config,
                                             load_official_checkpoint, save_converted)
from mmmask.models.converters.pixpro import convert_pixpro


def main() -> int:
    parser = argparse.ArgumentParser(description='Convert official PixPro checkpoints to mmmask')
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--backbone-only', action='store_true',
                        help='keep only backbone.* (for init_cfg Pretrained)')
    parser.add_argument('--config', help='verify the full result against this PixPro config')
    args = parser.parse_args()
    try:
        converted = convert_pixpro(load_official_checkpoint(args.src),
                                   backbone_only=args.backbone_only)
        if args.config and not args.backbone_only:
            check_against_config(converted, args.config)
    except ConversionError as e:
        print(f'pixpro2mmmask: {e}', file=sys.stderr)
        return 2
    save_converted(converted, args.dst, args.src, 'pixpro2mmmask')
    return 0


if __name__ == '__main__':
    sys.exit(main())
