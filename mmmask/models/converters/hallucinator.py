"""Official Hallucinator MoCo checkpoints (jingwu6/Hallucination-improves-the-performance-of-
unsupervised-visual-representation-learning, ``DDP_moco.py`` ``moco_state``) -> mmmask.

Official ``MoCo(encoder_q, encoder_k, mlp=..., generator=True)`` keys go to
:class:`mmmask.HallucinatorMoCo`: the encoder trunk (``encoder_q.*`` but ``fc``) to ``backbone.*``
(the official ResNet uses torchvision names, which are mmpretrain ``ResNet``/``ResNet_CIFAR``
names), the projection ``encoder_q.fc`` to the neck (``fc.0/fc.2`` -> ``neck.mlp.0/2`` of
mmpretrain ``MoCoV2Neck``; a single ``fc`` (MoCo v1, ``mlp=False``) -> ``neck.fc`` of
``LinearNeck``), ``encoder_k.*`` to the EMA copy ``encoder_k.module.{0,1}.*``, the generator's
``MLP.{0,2,4}`` to ``hallucinator.mlp.{0,2,4}`` (its ``fc1/fc2/fc3`` are the same tensors
registered twice and are dropped after checking they agree), ``queue``/``queue_ptr`` unchanged.
"""
from typing import Dict

import torch
from torch import Tensor

from .common import ConversionError, rename_keys

__all__ = ['convert_hallucinator_moco']


def _encoder_rules(src: str, trunk: str, neck: str):
    return [
        (rf'{src}\.fc\.(0|2)\.(weight|bias)', rf'{neck}.mlp.\1.\2'),
        (rf'{src}\.fc\.(weight|bias)', rf'{neck}.fc.\1'),
        (rf'{src}\.((?:conv1|bn1|layer\d\.\d+\.\w+(?:\.\d)?)\.'
         r'(?:weight|bias|running_mean|running_var|num_batches_tracked))', rf'{trunk}.\1'),
    ]


_RULES = [
    (r'queue', 'queue'),
    (r'queue_ptr', 'queue_ptr'),
    *_encoder_rules('encoder_q', 'backbone', 'neck'),
    *_encoder_rules('encoder_k', 'encoder_k.module.0', 'encoder_k.module.1'),
    (r'generator\.MLP\.(0|2|4)\.(weight|bias)', r'hallucinator.mlp.\1.\2'),
    (r'generator\.fc[123]\.(weight|bias)', None),  # duplicates of MLP.* (checked below)
]
_DUPLICATES = {'fc1': 'MLP.0', 'fc2': 'MLP.2', 'fc3': 'MLP.4'}


def convert_hallucinator_moco(state_dict: Dict[str, Tensor],
                              backbone_only: bool = False) -> Dict[str, Tensor]:
    """Rename an official Hallucinator/MoCo state dict (``moco_state``; a DDP ``module.`` prefix
    is stripped) to :class:`mmmask.HallucinatorMoCo` keys; ``encoder_k.steps`` (mmengine's EMA
    counter) is set to 1. ``backbone_only`` keeps ``backbone.*`` (for ``init_cfg=dict(
    type='Pretrained', prefix='backbone.')``) and accepts checkpoints without a generator."""
    clean = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state_dict.items()}
    if 'encoder_q.conv1.weight' not in clean:
        raise ConversionError('not an official MoCo/Hallucinator checkpoint: no '
                              f'encoder_q.conv1.weight (first keys: {", ".join(list(clean)[:8])})')
    for fc, mlp in _DUPLICATES.items():
        for p in ('weight', 'bias'):
            a, b = clean.get(f'generator.{fc}.{p}'), clean.get(f'generator.{mlp}.{p}')
            if a is not None and (b is None or not torch.equal(a, b)):
                raise ConversionError(f'generator.{fc}.{p} and generator.{mlp}.{p} should be the '
                                      'same tensor in an official checkpoint')
    out = dict(rename_keys(clean, _RULES, 'Hallucinator MoCo'))
    if backbone_only:
        return {k: v for k, v in out.items() if k.startswith('backbone.')}
    if not any(k.startswith('hallucinator.') for k in out):
        raise ConversionError('no generator.* weights: this is a plain MoCo checkpoint (trained '
                              'without --generator); convert it with backbone_only=True')
    out['encoder_k.steps'] = torch.tensor(1, dtype=torch.long)
    return out
