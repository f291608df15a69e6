"""Convert official Sparsifiner checkpoints (github.com/lim142857/Sparsifiner) — or the timm/FB DeiT
checkpoints its training starts from — to mmmask.

    python tools/model_converters/sparsifiner2mmmask.py SRC DST [--backbone-only]
        [--require-predictor] [--config CFG]

SRC: an official training checkpoint (weights under ``model``; ``model_ema`` with ``--ema``), a
bare state dict, or a DeiT checkpoint such as ``deit_small_patch16_224-cd65a155.pth``. DST gets
``{'state_dict': ..., 'meta': ...}`` with ``backbone.*`` (:class:`mmmask.Sparsifiner`, mmpretrain
``VisionTransformer`` keys + ``layers.{i}.attn.bias_provider.*``) and ``head.layers.head.*``
(mmpretrain ``VisionTransformerClsHead``): ``load_from`` of a Sparsifiner config, or with
``--backbone-only`` ``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``.
A converted DeiT checkpoint also initialises the dense teacher of the configs.
``--config`` checks the result against the model a Sparsifiner config builds.
"""
import argparse
import sys

from mmmask.models.converters.common import (ConversionError, check_against_config,
                                             save_converted, unwrap_state_dict)
from mmmask.models.converters.sparsifiner import convert_sparsifiner, sparsifiner_arch_of


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description='Convert official Sparsifiner / DeiT '
                                     'checkpoints to mmmask')
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--backbone-only', action='store_true',
                        help='keep only backbone.* (for init_cfg Pretrained)')
    parser.add_argument('--ema', action='store_true', help='take model_ema instead of model')
    parser.add_argument('--require-predictor', action='store_true',
                        help='fail unless the checkpoint has mask_predictor weights')
    parser.add_argument('--config', help='verify the result against this Sparsifiner config')
    args = parser.parse_args(argv)

    import torch
    ckpt = torch.load(args.src, map_location='cpu', weights_only=False)
    keys = ('model_ema', 'state_dict', 'model') if args.ema else ('model', 'state_dict')
    state_dict = unwrap_state_dict(ckpt, keys=keys)
    try:
        converted = convert_sparsifiner(state_dict, with_head=not args.backbone_only,
                                        require_predictor=args.require_predictor)
        if args.config and not args.backbone_only:
            check_against_config(converted, args.config)
    except ConversionError as e:
        print(f'sparsifiner2mmmask: {e}', file=sys.stderr)
        return 2
    save_converted(converted, args.dst, args.src, 'sparsifiner2mmmask',
                   arch=sparsifiner_arch_of(converted))
    return 0


if __name__ == '__main__':
    sys.exit(main())
