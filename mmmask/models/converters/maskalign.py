"""MaskAlign (github.com/OpenDriveLab/maskalign) checkpoints → mmmask.

The official ``MaskedAutoencoderViT`` holds a timm student (``blocks.*``), the Dynamic Alignment
parameters (``distill_weights``, ``distill_heads.*``) and, frozen, an HF ``CLIPVisionModel``
teacher (``clip_model.vision_model.*``). They map to ``mmmask.MaskAlign``'s ``backbone.*``
(``mmmask.MaskedViT`` = mmpretrain ``VisionTransformer`` keys), ``neck.*`` and ``teacher.*`` (an
mmpretrain ``VisionTransformer`` with ``pre_norm=True``, LN eps 1e-5 and
``layer_cfgs=dict(act_cfg=dict(type='mmpretrain.QuickGELU'))``).
"""
import re
from collections import OrderedDict
from typing import Dict

import torch
from torch import Tensor

from .common import ConversionError, rename_keys

__all__ = ['convert_maskalign', 'convert_hf_clip_vision']

_TIMM_VIT_RULES = [
    (r'cls_token', r'backbone.cls_token'),
    (r'pos_embed', r'backbone.pos_embed'),
    (r'patch_embed\.proj\.(weight|bias)', r'backbone.patch_embed.projection.\1'),
    (r'blocks\.(\d+)\.norm1\.(weight|bias)', r'backbone.layers.\1.ln1.\2'),
    (r'blocks\.(\d+)\.attn\.(qkv|proj)\.(weight|bias)', r'backbone.layers.\1.attn.\2.\3'),
    (r'blocks\.(\d+)\.norm2\.(weight|bias)', r'backbone.layers.\1.ln2.\2'),
    (r'blocks\.(\d+)\.mlp\.fc1\.(weight|bias)', r'backbone.layers.\1.ffn.layers.0.0.\2'),
    (r'blocks\.(\d+)\.mlp\.fc2\.(weight|bias)', r'backbone.layers.\1.ffn.layers.1.\2'),
    (r'norm\.(weight|bias)', r'backbone.ln1.\1'),
    (r'distill_weights', r'neck.weights'),
    (r'distill_heads\.(\d+)\.(.*)', r'neck.heads.\1.\2'),
]

_HF_CLIP_RULES = [
    (r'embeddings\.patch_embedding\.weight', r'patch_embed.projection.weight'),
    (r'embeddings\.position_ids', None),
    (r'pre_layrnorm\.(weight|bias)', r'pre_norm.\1'),
    (r'post_layernorm\.(weight|bias)', r'ln1.\1'),
    (r'encoder\.layers\.(\d+)\.layer_norm1\.(weight|bias)', r'layers.\1.ln1.\2'),
    (r'encoder\.layers\.(\d+)\.layer_norm2\.(weight|bias)', r'layers.\1.ln2.\2'),
    (r'encoder\.layers\.(\d+)\.self_attn\.out_proj\.(weight|bias)', r'layers.\1.attn.proj.\2'),
    (r'encoder\.layers\.(\d+)\.mlp\.fc1\.(weight|bias)', r'layers.\1.ffn.layers.0.0.\2'),
    (r'encoder\.layers\.(\d+)\.mlp\.fc2\.(weight|bias)', r'layers.\1.ffn.layers.1.\2'),
]


def convert_hf_clip_vision(state_dict: Dict[str, Tensor], prefix: str = '') -> Dict[str, Tensor]:
    """HF ``CLIPVisionModel`` weights (``vision_model.*``, any leading prefix) → mmpretrain
    ``VisionTransformer(pre_norm=True)`` keys, prefixed with ``prefix``.

    ``class_embedding`` [D] → ``cls_token`` [1, 1, D]; ``position_embedding`` [N, D] →
    ``pos_embed`` [1, N, D]; separate q/k/v projections → one ``qkv``; ``post_layernorm`` (applied
    by HF to the pooled cls only) → ``ln1`` (final norm, not used by MaskAlign's targets).
    """
    sd = {}
    for k, v in state_dict.items():
        m = re.search(r'vision_model\.(.*)', k)
        if m is None:
            raise ConversionError(f'{k} is not an HF CLIP vision key (vision_model.*)')
        sd[m.group(1)] = v
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    try:
        out[prefix + 'cls_token'] = sd.pop('embeddings.class_embedding').reshape(1, 1, -1)
        out[prefix + 'pos_embed'] = sd.pop('embeddings.position_embedding.weight').unsqueeze(0)
    except KeyError as e:
        raise ConversionError(f'HF CLIP vision checkpoint lacks {e}') from None
    layers = sorted({int(m.group(1)) for k in sd
                     for m in [re.match(r'encoder\.layers\.(\d+)\.self_attn', k)] if m})
    for i in layers:
        p = f'encoder.layers.{i}.self_attn.'
        for kind in ('weight', 'bias'):
            try:
                parts = [sd.pop(f'{p}{n}_proj.{kind}') for n in 'qkv']
            except KeyError as e:
                raise ConversionError(f'HF CLIP layer {i} lacks {e}') from None
            out[f'{prefix}layers.{i}.attn.qkv.{kind}'] = torch.cat(parts, 0)
    for k, v in rename_keys(sd, _HF_CLIP_RULES, 'HF CLIP vision').items():
        out[prefix + k] = v
    return out


def convert_maskalign(state_dict: Dict[str, Tensor], with_teacher: bool = True
                      ) -> Dict[str, Tensor]:
    """Official MaskAlign pretraining checkpoint → ``mmmask.MaskAlign`` state dict
    (``backbone.*``, ``neck.*`` and, with ``with_teacher``, ``teacher.*`` from ``clip_model.*``).
    A DINO teacher (``dino_model.*``, HF ``ViTModel``) is not supported: drop it with
    ``with_teacher=False``."""
    student = {k: v for k, v in state_dict.items()
               if not k.startswith(('clip_model.', 'dino_model.'))}
    out = rename_keys(student, _TIMM_VIT_RULES, 'MaskAlign student')
    if with_teacher:
        clip = {k: v for k, v in state_dict.items() if k.startswith('clip_model.')}
        if any(k.startswith('dino_model.') for k in state_dict):
            raise ConversionError('DINO (HF ViTModel) teachers are not converted; use '
                                  'with_teacher=False (--no-teacher)')
        if clip:
            out.update(convert_hf_clip_vision(clip, prefix='teacher.'))
    return out
