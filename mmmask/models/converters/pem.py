"""Official PEM (NiccoloCavagnero/PEM, detectron2) checkpoint keys → mmmask/mmseg/mmdet keys."""
from collections import OrderedDict
from typing import Dict, Optional

import torch
from torch import Tensor

from .common import ConversionError, rename_keys
from .stdc import convert_stdc

#: ``sem_seg_head.{pixel_decoder,predictor}.*`` (prefix removed) → :class:`PEMHeadMixin` names.
HEAD_RULES = [
    (r'pixel_decoder\.(in_projections\.\d+|conv_avg|out)\.(conv|bn)\.(.+)',
     r'pixel_decoder.\1.\2.\3'),
    (r'pixel_decoder\.csm\.(\d+)\.mlp\.0\.mlp\.(\d)\.(.+)', r'pixel_decoder.csm.\1.mlp.\2.\3'),
    (r'pixel_decoder\.dcn\.(\d+)\.(dcn_offset|dcn|up_sample)\.(.+)', r'pixel_decoder.dcn.\1.\2.\3'),
    (r'pixel_decoder\.dcn\.(\d+)\.dcn_bn\.(.+)', r'pixel_decoder.dcn.\1.dcn_norm.\2'),
    (r'pixel_decoder\.dcn\.(\d+)\.up_bn\.(.+)', r'pixel_decoder.dcn.\1.up_norm.\2'),
    (r'predictor\.transformer_self_attention_layers\.(\d+)\.self_attn\.(.+)',
     r'transformer_decoder.layers.\1.self_attn.\2'),
    (r'predictor\.transformer_self_attention_layers\.(\d+)\.norm\.(.+)',
     r'transformer_decoder.layers.\1.self_attn_norm.\2'),
    (r'predictor\.transformer_cross_attention_layers\.(\d+)\.alpha',
     r'transformer_decoder.layers.\1.cross_attn.alpha'),
    (r'predictor\.transformer_cross_attention_layers\.(\d+)\.feature_proj\.to_query_3x3\.(.+)',
     r'transformer_decoder.layers.\1.cross_attn.memory_proj.dwconv.\2'),
    (r'predictor\.transformer_cross_attention_layers\.(\d+)\.feature_proj\.bn\.(.+)',
     r'transformer_decoder.layers.\1.cross_attn.memory_proj.norm.\2'),
    (r'predictor\.transformer_cross_attention_layers\.(\d+)\.feature_proj\.out\.(.+)',
     r'transformer_decoder.layers.\1.cross_attn.memory_proj.linear.\2'),
    (r'predictor\.transformer_cross_attention_layers\.(\d+)\.(query_proj\.[01]|proj)\.(.+)',
     r'transformer_decoder.layers.\1.cross_attn.\2.\3'),
    (r'predictor\.transformer_cross_attention_layers\.(\d+)\.final\.(.+)',
     r'transformer_decoder.layers.\1.cross_attn.out_proj.\2'),
    (r'predictor\.transformer_ffn_layers\.(\d+)\.linear1\.(.+)',
     r'transformer_decoder.layers.\1.ffn.0.\2'),
    (r'predictor\.transformer_ffn_layers\.(\d+)\.linear2\.(.+)',
     r'transformer_decoder.layers.\1.ffn.3.\2'),
    (r'predictor\.transformer_ffn_layers\.(\d+)\.norm\.(.+)',
     r'transformer_decoder.layers.\1.ffn_norm.\2'),
    (r'predictor\.decoder_norm\.(.+)', r'transformer_decoder.post_norm.\1'),
    (r'predictor\.(query_feat|query_embed|level_embed)\.weight', r'\1.weight'),
    (r'predictor\.input_proj\.(\d+)\.(weight|bias)', r'decoder_input_projs.\1.\2'),
    (r'predictor\.class_embed\.(.+)', r'cls_embed.\1'),
    (r'predictor\.mask_embed\.layers\.0\.(.+)', r'mask_embed.0.\1'),
    (r'predictor\.mask_embed\.layers\.1\.(.+)', r'mask_embed.2.\1'),
    (r'predictor\.mask_embed\.layers\.2\.(.+)', r'mask_embed.4.\1'),
]

def convert_pem_head(state_dict: Dict[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """Keys of one official ``MaskFormerHead`` (``pixel_decoder.*``, ``predictor.*``)."""
    return rename_keys(state_dict, HEAD_RULES, 'PEM head')


def convert_d2_resnet(state_dict: Dict[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """detectron2 ResNet keys (``stem.conv1``, ``resN.i.convK[.norm]``, ``shortcut``) → mmcv ResNet
    (torchvision-style, ``STRIDE_IN_1X1=False``, as the PEM configs use).

    detectron2's (Frozen)BN stores weight/bias/running_mean/running_var like BatchNorm2d.
    """
    rules = [
        (r'stem\.conv1\.weight', r'conv1.weight'),
        (r'stem\.conv1\.norm\.(.+)', r'bn1.\1'),
    ]
    for stage in range(2, 6):
        layer = stage - 1
        rules += [
            (rf'res{stage}\.(\d+)\.conv(\d)\.weight', rf'layer{layer}.\1.conv\2.weight'),
            (rf'res{stage}\.(\d+)\.conv(\d)\.norm\.(.+)', rf'layer{layer}.\1.bn\2.\3'),
            (rf'res{stage}\.(\d+)\.shortcut\.weight', rf'layer{layer}.\1.downsample.0.weight'),
            (rf'res{stage}\.(\d+)\.shortcut\.norm\.(.+)', rf'layer{layer}.\1.downsample.1.\2'),
        ]
    converted = rename_keys(state_dict, rules, 'detectron2 ResNet')
    for key, value in list(converted.items()):  # FrozenBN has no counter; BN wants one
        if key.endswith('running_var'):
            converted.setdefault(key[:-len('running_var')] + 'num_batches_tracked',
                                 torch.zeros((), dtype=torch.long))
    return converted


def convert_pem(state_dict: Dict[str, Tensor], head_prefix: str = 'decode_head.'
                ) -> 'OrderedDict[str, Tensor]':
    """A full official checkpoint (``backbone.*``, ``sem_seg_head.*``) → mmmask keys.

    Args:
        state_dict: the official ``model`` dict.
        head_prefix: ``'decode_head.'`` for mmseg semantic models (:class:`PEMSegHead`),
            ``'panoptic_head.'`` for mmdet ``Mask2Former`` (:class:`PEMHead`).
    """
    backbone = {k[len('backbone.'):]: v for k, v in state_dict.items()
                if k.startswith('backbone.')}
    head = {k[len('sem_seg_head.'):]: v for k, v in state_dict.items()
            if k.startswith('sem_seg_head.')}
    others = [k for k in state_dict if not k.startswith(('backbone.', 'sem_seg_head.'))
              and k not in ('pixel_mean', 'pixel_std')]
    if others or not head:
        shown = ', '.join(others[:10]) or '(no sem_seg_head.* keys)'
        raise ConversionError(f'not an official PEM checkpoint: {shown}')
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    if backbone:
        if any(k.startswith('features.') for k in backbone):
            converted: Optional[Dict[str, Tensor]] = convert_stdc(backbone)
        else:
            converted = convert_d2_resnet(backbone)
        out.update(('backbone.' + k, v) for k, v in converted.items())
    out.update((head_prefix + k, v) for k, v in convert_pem_head(head).items())
    return out
