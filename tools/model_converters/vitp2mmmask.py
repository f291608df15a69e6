"""Convert official ViT-P point classifiers and DINOv2 pretrain weights to mmmask.

    python tools/model_converters/vitp2mmmask.py SRC DST [--num-heads N]

SRC: a released ViT-P classifier (e.g. HF ``Sajjad-Sh33/ViT-P`` ``model_ADE20k_base774_250point.pth``,
keys ``cls_embeddings``/``blocks.*``/``head``), or a DINOv2 ``dinov2_vit{s,b,l}14_pretrain.pth``
(the starting point of ViT-P training: the point embedding and head are then left to their init).
DST gets ``{'state_dict': {'encoder.*', 'head.*'}, 'meta': ...}`` for ``mmmask.ViTPPointClassifier``
— load it with ``load_from=DST`` (classifier training/testing) or ``classifier_checkpoint=DST``
(fusion). The result is checked against a ``ViTPPointClassifier`` built with the architecture read
from the checkpoint; on any mismatch nothing is written (exit status 2).
"""
import argparse
import sys

import torch

from mmmask.models.classifiers import ViTPPointClassifier
from mmmask.models.converters import ConversionError, convert_vitp, unwrap_state_dict, vitp_arch_of
from mmmask.models.converters.common import check_complete, save_converted


def main() -> int:
    parser = argparse.ArgumentParser(description='Convert ViT-P / DINOv2 checkpoints to mmmask')
    parser.add_argument('src', help='official ViT-P classifier or DINOv2 pretrain checkpoint')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--num-heads', type=int,
                        help='attention heads (default: DINOv2 sizes S 6 / B 12 / L 16, else D/64)')
    args = parser.parse_args()

    state_dict = unwrap_state_dict(torch.load(args.src, map_location='cpu', weights_only=False),
                                   keys=('state_dict', 'model', 'module', 'teacher', 'student'))
    try:
        converted = convert_vitp(state_dict)
        arch, patch, num_classes = vitp_arch_of(converted)
        if args.num_heads:
            arch['num_heads'] = args.num_heads
        ref = ViTPPointClassifier(
            encoder=dict(type='mmmask.ViTPEncoder', arch=arch, patch_size=patch),
            num_classes=num_classes or 1).state_dict()
        if num_classes is None:  # DINOv2 pretrain: no point embedding / head yet
            ref = {k: v for k, v in ref.items()
                   if not k.startswith('head.') and k != 'encoder.point_embed.weight'}
        check_complete(converted, ref, f'ViTPPointClassifier({arch}, patch {patch})')
        extra = sorted(set(converted) - set(ref))
        if extra:
            raise ConversionError(f'{len(extra)} unexpected key(s): {", ".join(extra[:20])}')
    except ConversionError as e:
        print(f'vitp2mmmask: {e}', file=sys.stderr)
        return 2
    save_converted(converted, args.dst, args.src, 'vitp2mmmask', arch=arch, patch_size=patch,
                   num_classes=num_classes)
    kind = f'{num_classes}-class ViT-P classifier' if num_classes else 'DINOv2 pretrain'
    print(f'{kind}: D={arch["embed_dims"]}, depth={arch["num_layers"]}, '
          f'heads={arch["num_heads"]}, patch={patch}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
