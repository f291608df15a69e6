"""Convert official TOV-VICReg checkpoints (github.com/mgoulao/TOV-VICReg) to mmmask.

    python tools/model_converters/tov_vicreg2mmmask.py SRC DST [--backbone-only]
        [--img-size 84 --patch-size 8] [--config configs/tov_vicreg/CONFIG.py]

SRC: a full ``TOVVICReg`` state dict (``backbone.*``, ``projector.*``,
``temporal_order_predictor.*``) or the encoder ``main.py`` saves (``final_encoder.pth``, bare ViT
keys; implies ``--backbone-only``). DST gets ``{'state_dict': ..., 'meta': ...}`` with
``backbone.*`` (mmpretrain VisionTransformer keys), ``neck.projector.*`` and ``head.fc.*`` —
``load_from`` of a TOV-VICReg config, or with ``--backbone-only`` ``init_cfg=dict(type='Pretrained',
checkpoint=DST, prefix='backbone.')`` of a downstream ViT. ``--img-size`` bakes the official
(DINO, bicubic ``+0.1``) interpolation of the 224-px position embedding to that input size, for a
downstream mmpretrain ViT built with ``img_size=IMG, patch_cfg=dict(padding=0)``. ``--config``
checks the result against the model a TOV-VICReg config builds.
"""
import argparse
import sys

from mmmask.models.converters.common import (ConversionError, check_against_config,
                                             load_official_checkpoint, save_converted)
from mmmask.models.converters.tov_vicreg import convert_tov_vicreg


def main() -> int:
    parser = argparse.ArgumentParser(description='Convert official TOV-VICReg checkpoints')
    parser.add_argument('src', help='official checkpoint (TOVVICReg state dict or final_encoder)')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--backbone-only', action='store_true',
                        help='keep only backbone.* (for init_cfg Pretrained)')
    parser.add_argument('--img-size', type=int, help='bake the position embedding for this size')
    parser.add_argument('--patch-size', type=int, default=8, help='patch size (run script: 8)')
    parser.add_argument('--config', help='verify the result against this TOV-VICReg config')
    args = parser.parse_args()
    grid = None
    if args.img_size:
        side = args.img_size // args.patch_size
        grid = (side, side)
    try:
        converted = convert_tov_vicreg(load_official_checkpoint(args.src),
                                       backbone_only=args.backbone_only, pos_grid=grid)
        if args.config and not args.backbone_only and grid is None:
            check_against_config(converted, args.config)
    except ConversionError as e:
        print(f'tov_vicreg2mmmask: {e}', file=sys.stderr)
        return 2
    save_converted(converted, args.dst, args.src, 'tov_vicreg2mmmask')
    return 0


if __name__ == '__main__':
    sys.exit(main())
