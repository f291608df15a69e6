"""Official Hi-End-MAE (FengheTan9/Hi-End-MAE, ``hi_end_mae.HiEndMAE``) -> ``mmmask.HiEndMAE``.

The official models are 3-D: ``encoder.patch_embed.proj.weight`` is a ``Conv3d`` kernel
``[De, C, ph, pw, pd]`` and the sin-cos embeddings are 3-D grids. They keep their shapes under
``backbone.patch_embed.projection.*`` / ``backbone.pos_embed`` / ``neck.pos_embed``; a 2-D
``mmmask.MaskedViT`` cannot load them (use ``drop_3d=True`` to keep only the dimension-free
weights: transformer blocks, norms, tokens, decoder). The encoder's ``pos_embed`` gets a zero cls
row (the official encoder adds a zero position to its cls token).
"""
from typing import Dict

import torch
from torch import Tensor

from .common import ConversionError, rename_keys


def _vit_block(src: str, dst: str):
    b = src + r'\.(\d+)\.'
    return [
        (b + r'norm1\.(weight|bias)', dst + r'.\1.ln1.\2'),
        (b + r'attn\.(qkv|proj)\.(weight|bias)', dst + r'.\1.attn.\2.\3'),
        (b + r'norm2\.(weight|bias)', dst + r'.\1.ln2.\2'),
        (b + r'mlp\.fc1\.(weight|bias)', dst + r'.\1.ffn.layers.0.0.\2'),
        (b + r'mlp\.fc2\.(weight|bias)', dst + r'.\1.ffn.layers.1.\2'),
    ]


_X = r'decoder\.cross_attention_blocks\.(\d+)\.'
_RULES = [
    (r'encoder\.cls_token', 'backbone.cls_token'),
    (r'encoder_pos_embed', 'backbone.pos_embed'),
    (r'encoder\.patch_embed\.proj\.(weight|bias)', r'backbone.patch_embed.projection.\1'),
    *_vit_block(r'encoder\.blocks', 'backbone.layers'),
    (r'encoder\.norm\.(weight|bias)', r'backbone.ln1.\1'),
    (r'encoder\.head\.(weight|bias)', None),
    (r'mask_token', 'neck.mask_token'),
    (r'decoder_pos_embed', 'neck.pos_embed'),
    (r'encoder_to_decoder\.(\d+)\.(weight|bias)', r'neck.projs.\1.\2'),
    *_vit_block(r'decoder\.blocks', 'neck.blocks'),
    (_X + r'(norm0|norm1|norm2)\.(weight|bias)', r'neck.cross_blocks.\1.\2.\3'),
    (_X + r'self_attn\.(qkv|proj)\.(weight|bias)', r'neck.cross_blocks.\1.self_attn.\2.\3'),
    (_X + r'cross_attn\.(q|kv|proj)\.(weight|bias)', r'neck.cross_blocks.\1.cross_attn.\2.\3'),
    (_X + r'mlp\.fc1\.(weight|bias)', r'neck.cross_blocks.\1.ffn.layers.0.0.\2'),
    (_X + r'mlp\.fc2\.(weight|bias)', r'neck.cross_blocks.\1.ffn.layers.1.\2'),
    (r'decoder\.norm\.(weight|bias)', r'neck.norm.\1'),
    (r'decoder\.head\.(weight|bias)', r'neck.head.\1'),
]


def convert_hi_end_mae(state_dict: Dict[str, Tensor], backbone_only: bool = False,
                       drop_3d: bool = False) -> Dict[str, Tensor]:
    """Rename an official Hi-End-MAE state dict (``state_dict``/``model`` of a checkpoint; DDP
    ``module.`` prefixes stripped).

    Args:
        backbone_only: keep only ``backbone.*``.
        drop_3d: drop the 3-D patch embedding and the 3-D sin-cos embeddings.
    """
    clean = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state_dict.items()}
    if 'encoder_to_decoder.0.weight' not in clean and not any(
            k.startswith('encoder.blocks.') for k in clean):
        raise ConversionError('not a Hi-End-MAE checkpoint: no encoder.blocks.* / '
                              f'encoder_to_decoder.* (first keys: {", ".join(list(clean)[:8])})')
    out = dict(rename_keys(clean, _RULES, 'Hi-End-MAE'))
    if 'backbone.pos_embed' in out:
        pos = out['backbone.pos_embed']
        out['backbone.pos_embed'] = torch.cat([pos.new_zeros(1, 1, pos.shape[-1]), pos], dim=1)
    if drop_3d:
        for k in ('backbone.pos_embed', 'neck.pos_embed', 'backbone.patch_embed.projection.weight',
                  'backbone.patch_embed.projection.bias'):
            out.pop(k, None)
    if backbone_only:
        out = {k: v for k, v in out.items() if k.startswith('backbone.')}
    return out
