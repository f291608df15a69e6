"""Convert official GMML checkpoints (github.com/Sara-Ahmed/GMML) to mmmask.

    python tools/model_converters/gmml2mmmask.py SRC DST [--backbone-only] [--config CFG]

SRC: an official pretraining checkpoint (``checkpoint.pth``; weights under ``SiT_model`` with the
DDP ``module.`` prefix) or a bare ``FullpiplineSiT`` state dict. DST gets ``{'state_dict': ...,
'meta': ...}`` with ``backbone.*`` (mmpretrain VisionTransformer keys) and ``head.*``
(:class:`mmmask.GMMLReconHead`) — usable as ``load_from`` of a GMML config or, with
``--backbone-only``, as ``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``.
``--config`` checks the result against the model a GMML config builds.
"""
import argparse
import sys

from mmmask.models.converters import ConversionError, convert_gmml
from mmmask.models.converters.common import (check_against_config, load_official_checkpoint,
                                             save_converted, unwrap_state_dict)


def main() -> int:
    parser = argparse.ArgumentParser(description='Convert official GMML checkpoints to mmmask')
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--backbone-only', action='store_true',
                        help='keep only backbone.* (for init_cfg Pretrained)')
    parser.add_argument('--config', help='verify the result against this GMML config')
    args = parser.parse_args()

    import torch
    ckpt = torch.load(args.src, map_location='cpu', weights_only=False)
    state_dict = unwrap_state_dict(ckpt, keys=('SiT_model', 'state_dict', 'model'))
    if not isinstance(state_dict, dict):
        state_dict = load_official_checkpoint(args.src)
    try:
        converted = convert_gmml(state_dict, with_head=not args.backbone_only)
        if args.config and not args.backbone_only:
            check_against_config(converted, args.config)
    except ConversionError as e:
        print(f'gmml2mmmask: {e}', file=sys.stderr)
        return 2
    save_converted(converted, args.dst, args.src, 'gmml2mmmask')
    return 0


if __name__ == '__main__':
    sys.exit(main())
