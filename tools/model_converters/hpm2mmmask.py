"""Convert official HPM checkpoints (github.com/Haochen-Wang409/HPM) to mmmask.

    python tools/model_converters/hpm2mmmask.py SRC DST [--backbone-only] [--with-teacher]
        [--config configs/hpm/hpm_vit-base-p16_8xb512-amp-coslr-800e_in1k.py]

SRC: an official pretraining checkpoint (``checkpoint-799.pth``, weights under ``model``). DST gets
``{'state_dict': ..., 'meta': ...}`` with ``backbone.*`` (mmpretrain ViT keys) and ``neck.*``
(reconstruction decoder + loss predictor) keys; with ``--backbone-only`` only ``backbone.*``
(for ``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``); with
``--with-teacher`` the EMA teacher is filled with the same weights (to resume HPM pretraining with
``load_from``). With ``--config`` the result is checked against the model that config builds.
"""
import argparse
import sys

from mmmask.models.converters import ConversionError, convert_hpm
from mmmask.models.converters.common import (check_against_config, load_official_checkpoint,
                                             save_converted)


def main() -> int:
    parser = argparse.ArgumentParser(description='Convert official HPM checkpoints to mmmask')
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--backbone-only', action='store_true',
                        help='keep only backbone.* (for init_cfg Pretrained)')
    parser.add_argument('--with-teacher', action='store_true',
                        help='also fill teacher.module.* (load into mmmask.HPM strictly)')
    parser.add_argument('--config', help='verify the result against this HPM config')
    args = parser.parse_args()
    try:
        converted = convert_hpm(load_official_checkpoint(args.src),
                                backbone_only=args.backbone_only,
                                with_teacher=args.with_teacher)
        if args.config and args.with_teacher:
            check_against_config(converted, args.config)
    except ConversionError as e:
        print(f'hpm2mmmask: {e}', file=sys.stderr)
        return 2
    save_converted(converted, args.dst, args.src, 'hpm2mmmask')
    return 0


if __name__ == '__main__':
    sys.exit(main())
