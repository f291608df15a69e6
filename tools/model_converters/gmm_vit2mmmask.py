"""Convert official GMM-attention ViT checkpoints (github.com/CatworldLee/Gaussian-Mixture-Mask-
Attention, ``models/vit.py`` ``ViT`` with ``--is_GMM``, ``--is_SLM`` or neither) to mmmask.

    python tools/model_converters/gmm_vit2mmmask.py SRC DST [--num-heads H] [--backbone-only]
        [--config CFG]

SRC: the official ``checkpoint.pth`` / ``best.pth`` of ``main.py`` (weights under
``model_state_dict``) or a bare ``ViT`` state dict. DST gets ``{'state_dict': ..., 'meta': ...}``
with ``backbone.*`` (:class:`mmmask.GMMViT`) and ``head.fc.*`` (mmpretrain ``LinearClsHead``),
usable as ``load_from`` of a config in configs/gmm_vit/, or with ``--backbone-only`` as
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``. ``meta.gmm_vit`` holds
the GMMViT arguments the checkpoint implies. ELM and plain-ViT checkpoints need ``--num-heads``
(12 for the paper's ``vit`` model); ``--config`` checks the result against a config's model.
"""
import argparse
import sys

from mmmask.models.converters import ConversionError
from mmmask.models.converters.common import (check_against_config, save_converted,
                                             unwrap_state_dict)
from mmmask.models.converters.gmm_vit import convert_gmm_vit, gmm_vit_arch_of


def main() -> int:
    parser = argparse.ArgumentParser(description='Convert official GMM-ViT checkpoints to mmmask')
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--num-heads', type=int, help='heads (needed for ELM / plain ViT)')
    parser.add_argument('--in-channels', type=int, default=3)
    parser.add_argument('--backbone-only', action='store_true',
                        help='keep only backbone.* (for init_cfg Pretrained)')
    parser.add_argument('--config', help='verify the result against this config')
    args = parser.parse_args()

    import torch
    ckpt = torch.load(args.src, map_location='cpu', weights_only=False)
    state_dict = unwrap_state_dict(ckpt, keys=('model_state_dict', 'state_dict', 'model'))
    try:
        arch = gmm_vit_arch_of(state_dict, args.num_heads, args.in_channels)
        converted = convert_gmm_vit(state_dict, with_head=not args.backbone_only,
                                    in_channels=args.in_channels)
        if args.config and not args.backbone_only:
            check_against_config(converted, args.config)
    except ConversionError as e:
        print(f'gmm_vit2mmmask: {e}', file=sys.stderr)
        return 2
    save_converted(converted, args.dst, args.src, 'gmm_vit2mmmask', gmm_vit=arch)
    return 0


if __name__ == '__main__':
    sys.exit(main())
