"""Convert official Hallucinator MoCo checkpoints (github.com/jingwu6/Hallucination-improves-the-
performance-of-unsupervised-visual-representation-learning, ``DDP_moco.py``) to mmmask.

    python tools/model_converters/hallucinator2mmmask.py SRC DST [--backbone-only] [--config CFG]

SRC: an official pretraining checkpoint (``last.pth`` / ``epoch_*.pth``, weights under
``moco_state`` with the DDP ``module.`` prefix). DST gets ``{'state_dict': ..., 'meta': ...}`` with
:class:`mmmask.HallucinatorMoCo` keys (``backbone.*`` = mmpretrain ResNet/ResNet_CIFAR keys,
``neck.mlp.*``, ``encoder_k.module.*``, ``hallucinator.mlp.*``, ``queue``, ``queue_ptr``), loadable
with ``load_from`` to resume pretraining; with ``--backbone-only`` only ``backbone.*`` (for
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``, e.g.
configs/hallucinator/resnet18-cifar_linear-100e_cifar10.py; plain MoCo checkpoints work too).
With ``--config CFG`` (e.g. configs/hallucinator/hallucinator-mocov2_resnet18-cifar_1xb512-coslr-
500e_cifar10.py) the full result is checked against the model that config builds.
"""
import argparse
import sys

from mmmask.models.converters import ConversionError
from mmmask.models.converters.common import (check_against_config, load_official_checkpoint,
                                             save_converted)
from mmmask.models.converters.hallucinator import convert_hallucinator_moco


def main() -> int:
    parser = argparse.ArgumentParser(
        description='Convert official Hallucinator MoCo checkpoints to mmmask')
    parser.add_argument('src', help='official checkpoint (moco_state)')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--backbone-only', action='store_true',
                        help='keep only backbone.* (for init_cfg Pretrained)')
    parser.add_argument('--config', help='verify the result against this HallucinatorMoCo config')
    args = parser.parse_args()
    try:
        import torch
        ckpt = torch.load(args.src, map_location='cpu', weights_only=False)
        if isinstance(ckpt, dict) and isinstance(ckpt.get('moco_state'), dict):
            state = ckpt['moco_state']
        else:
            state = load_official_checkpoint(args.src)
        converted = convert_hallucinator_moco(state, backbone_only=args.backbone_only)
        if args.config and not args.backbone_only:
            check_against_config(converted, args.config)
    except ConversionError as e:
        print(f'hallucinator2mmmask: {e}', file=sys.stderr)
        return 2
    save_converted(converted, args.dst, args.src, 'hallucinator2mmmask')
    return 0


if __name__ == '__main__':
    sys.exit(main())
