"""Convert official PPMA checkpoints (github.com/zhongchenzhao/PPMA) to mmmask.

    python tools/model_converters/ppma2mmmask.py SRC DST [--backbone-only] [--arch tiny|small|base]

SRC: a classification checkpoint (``best.pth``, weights under ``model``) or an mmseg-0.x
segmentation checkpoint (``iter_160000.pth``, under ``state_dict``). DST gets ``{'state_dict': ...,
'meta': ...}`` with ``backbone.*`` keys (+ ``head.*`` for mmpretrain, or ``decode_head.*`` /
``auxiliary_head.*`` for mmseg) — usable as ``load_from`` or, with ``--backbone-only``, as a backbone
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``. With ``--arch`` the result
is checked against a freshly built backbone: missing keys and shape mismatches are reported.
"""
import argparse
import sys

import torch

from mmmask.models.backbones import PPMA
from mmmask.models.converters import ConversionError, convert_ppma, unwrap_state_dict
from mmmask.models.converters.common import check_complete, save_converted


def main() -> int:
    parser = argparse.ArgumentParser(description='Convert official PPMA checkpoints to mmmask')
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--backbone-only', action='store_true',
                        help='keep only backbone.* (for init_cfg Pretrained)')
    parser.add_argument('--arch', choices=sorted(PPMA.arch_zoo),
                        help='verify the result against this variant')
    args = parser.parse_args()

    ckpt = torch.load(args.src, map_location='cpu', weights_only=False)
    state_dict = unwrap_state_dict(ckpt)
    try:
        converted = convert_ppma(state_dict, with_head=not args.backbone_only)
        if args.arch:
            backbone = {k[len('backbone.'):]: v for k, v in converted.items()
                        if k.startswith('backbone.')}
            ref = PPMA(arch=args.arch).state_dict()
            if not any(k.startswith('norm') for k in backbone):  # classification: no out norms
                ref = {k: v for k, v in ref.items() if not k.startswith('norm')}
            check_complete(backbone, ref, f'PPMA-{args.arch}')
    except ConversionError as e:
        print(f'ppma2mmmask: {e}', file=sys.stderr)
        return 2
    save_converted(converted, args.dst, args.src, 'ppma2mmmask')
    return 0


if __name__ == '__main__':
    sys.exit(main())
