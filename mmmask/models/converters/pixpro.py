"""Official PixPro (zdaxie/PixPro, ``contrast/models/PixPro.py``) checkpoints -> ``mmmask.PixPro``.

The official ResNet (``contrast/resnet.py``, ``head_type='early_return'``) uses torchvision key
names, which are also mmpretrain ``ResNet`` names (``conv1``, ``bn1``, ``layerN.i.convK/bnK``,
``downsample.0/1``); so:

| official | mmmask.PixPro |
|---|---|
| ``encoder.*`` | ``backbone.*`` |
| ``projector.{linear1,bn1,linear2}.*`` | ``neck.*`` (``MLP2dNeck``, same names) |
| ``encoder_k.*`` | ``teacher.module.0.*`` |
| ``projector_k.*`` | ``teacher.module.1.*`` |
| ``value_transform.*`` | ``head.ppm.value_transform.*`` |

The instance branch (``projector_instance*``, ``predictor``; off in the released recipes) has no
counterpart and is refused.
"""
from typing import Dict

from torch import Tensor

from .common import ConversionError, rename_keys

__all__ = ['PIXPRO_RULES', 'convert_pixpro']

PIXPRO_RULES = [
    (r'encoder(_k)?\.fc\.(weight|bias)', None),  # a classification head, if any
    (r'encoder\.(.+)', r'backbone.\1'),
    (r'encoder_k\.(.+)', r'teacher.module.0.\1'),
    (r'projector\.(linear1|bn1|linear2)\.(.+)', r'neck.\1.\2'),
    (r'projector_k\.(linear1|bn1|linear2)\.(.+)', r'teacher.module.1.\1.\2'),
    (r'value_transform\.(.+)', r'head.ppm.value_transform.\1'),
]


def convert_pixpro(state_dict: Dict[str, Tensor], backbone_only: bool = False) -> Dict[str, Tensor]:
    """Rename an official PixPro state dict (``model`` of ``ckpt_epoch_*.pth``; a DDP
    ``module.`` prefix is stripped).

    Args:
        backbone_only: keep only ``backbone.*`` (the online ResNet, which the paper transfers), for
            ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')`` in mmpretrain,
            mmdet and mmseg configs.
    """
    clean = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state_dict.items()}
    if 'encoder.conv1.weight' not in clean or 'projector.linear1.weight' not in clean:
        raise ConversionError('not a PixPro checkpoint: no encoder.conv1.weight / '
                              f'projector.linear1.weight (first keys: '
                              f'{", ".join(list(state_dict)[:8])})')
    instance = [k for k in clean if k.startswith(('projector_instance', 'predictor.'))]
    if instance and not backbone_only:
        raise ConversionError(f'{len(instance)} instance-branch key(s) (pixpro_ins_loss_weight > '
                              '0, e.g. ' + instance[0] + ') have no mmmask.PixPro counterpart; '
                              'convert with backbone_only=True')
    clean = {k: v for k, v in clean.items() if k not in instance}
    out = dict(rename_keys(clean, PIXPRO_RULES, 'PixPro'))
    if backbone_only:
        return {k: v for k, v in out.items() if k.startswith('backbone.')}
    return out
