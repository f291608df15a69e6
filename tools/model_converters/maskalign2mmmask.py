"""Convert MaskAlign checkpoints (github.com/OpenDriveLab/maskalign) or an HF CLIP vision tower
(the MaskAlign teacher) to mmmask.

    python tools/model_converters/maskalign2mmmask.py SRC DST [--backbone-only] [--no-teacher]
    python tools/model_converters/maskalign2mmmask.py --clip SRC DST

SRC: an official pretraining checkpoint (``checkpoint-199.pth``, weights under ``model``) →
``backbone.*`` (student, ``mmmask.MaskedViT`` / mmpretrain ``VisionTransformer`` keys),
``neck.*`` (Dynamic Alignment) and ``teacher.*`` (the CLIP tower); ``--backbone-only`` keeps the
student (for ``init_cfg=dict(type='Pretrained', prefix='backbone.')`` in fine-tuning configs).
With ``--clip``, SRC is HF ``CLIPVisionModel`` / ``CLIPModel`` weights (``pytorch_model.bin``;
text-tower keys are skipped): DST is an mmpretrain ``VisionTransformer(pre_norm=True,
QuickGELU, LN eps 1e-5)`` state dict, the ``teacher.init_cfg.checkpoint`` of the MaskAlign configs.
"""
import argparse
import sys

import torch

from mmmask.models.converters import (ConversionError, convert_hf_clip_vision,
                                      convert_maskalign, unwrap_state_dict)
from mmmask.models.converters.common import save_converted


def main() -> int:
    parser = argparse.ArgumentParser(description='Convert MaskAlign / HF CLIP checkpoints')
    parser.add_argument('src')
    parser.add_argument('dst')
    parser.add_argument('--clip', action='store_true', help='SRC is an HF CLIP (vision) model')
    parser.add_argument('--backbone-only', action='store_true', help='keep only backbone.*')
    parser.add_argument('--no-teacher', action='store_true', help='drop the teacher weights')
    args = parser.parse_args()

    ckpt = torch.load(args.src, map_location='cpu', weights_only=False)
    state_dict = unwrap_state_dict(ckpt)
    try:
        if args.clip:
            vision = {k: v for k, v in state_dict.items() if 'vision_model.' in k}
            if not vision:
                raise ConversionError('no vision_model.* keys: not an HF CLIP checkpoint')
            converted = convert_hf_clip_vision(vision)
        else:
            converted = convert_maskalign(
                state_dict, with_teacher=not (args.no_teacher or args.backbone_only))
            if args.backbone_only:
                converted = {k: v for k, v in converted.items() if k.startswith('backbone.')}
    except ConversionError as e:
        print(f'maskalign2mmmask: {e}', file=sys.stderr)
        return 2
    save_converted(converted, args.dst, args.src, 'maskalign2mmmask')
    return 0


if __name__ == '__main__':
    sys.exit(main())
