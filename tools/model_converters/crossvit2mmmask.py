"""Convert official CrossViT (github.com/IBM/CrossViT) or timm ``crossvit_*`` checkpoints to mmmask.

    python tools/model_converters/crossvit2mmmask.py SRC DST [--backbone-only] [--config CFG]

SRC: an official release (``crossvit_9_dagger_224.pth``: a bare ``VisionTransformer`` state dict),
a training checkpoint (weights under ``model``, optional DDP ``module.`` prefix) or a timm
``CrossVit`` state dict (``pos_embed_0`` naming). DST gets ``{'state_dict': ..., 'meta': ...}``
with ``backbone.*`` (:class:`mmmask.CrossViT`) and ``head.fcs.*``
(:class:`mmmask.MultiBranchLinearClsHead`) — usable as ``load_from`` of a CrossViT config or,
with ``--backbone-only``, as ``init_cfg=dict(type='Pretrained', checkpoint=DST,
prefix='backbone.')``. ``--config`` checks keys and shapes against the model a config builds
(e.g. the number of classes, the arch and the image sizes: 240/224 vs the 408/384 checkpoints).
"""
import argparse
import sys

from mmmask.models.converters import ConversionError, convert_crossvit
from mmmask.models.converters.common import (check_against_config, load_official_checkpoint,
                                             save_converted)


def main() -> int:
    parser = argparse.ArgumentParser(description='Convert official CrossViT checkpoints to mmmask')
    parser.add_argument('src', help='official or timm checkpoint')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--backbone-only', action='store_true',
                        help='keep only backbone.* (for init_cfg Pretrained)')
    parser.add_argument('--config', help='verify the result against this CrossViT config')
    args = parser.parse_args()

    state_dict = load_official_checkpoint(args.src)
    try:
        converted = convert_crossvit(state_dict, with_head=not args.backbone_only)
        if args.config and not args.backbone_only:
            check_against_config(converted, args.config)
    except ConversionError as e:
        print(f'crossvit2mmmask: {e}', file=sys.stderr)
        return 2
    save_converted(converted, args.dst, args.src, 'crossvit2mmmask')
    return 0


if __name__ == '__main__':
    sys.exit(main())
