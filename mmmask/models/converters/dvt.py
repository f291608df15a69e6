"""Official DVT stage-2 denoiser checkpoints (github.com/Jiawei-Yang/Denoising-ViT,
``dvt/models/online_denoiser.py`` ``Denoiser``) to :class:`mmmask.DVTDenoiser` keys.

Official layout (``main_denoiser.py`` saves ``{'denoiser': state_dict, 'optimizer': ...}``):
``pos_embed`` (if enabled) and the timm ``Block`` keys ``denoiser.{norm1, attn.qkv, attn.proj,
norm2, mlp.fc1, mlp.fc2}.*`` -- ``denoiser.{i}.*`` when ``num_blocks > 1`` (an ``nn.Sequential``).
Ours: ``pos_embed`` and mmpretrain ``TransformerEncoderLayer`` keys ``blocks.{i}.{ln1, attn.qkv,
attn.proj, ln2, ffn.layers.0.0, ffn.layers.1}.*``, under ``prefix`` (e.g. ``backbone.denoiser.``
for a :class:`mmmask.DenoisedViT` inside a segmentor). Frozen-ViT keys (``vit.*``) are dropped.
"""
import os.path as osp
import re
from typing import Dict

import torch
from torch import Tensor

from .common import rename_keys, unwrap_state_dict

__all__ = ['convert_dvt_denoiser', 'load_dvt_denoiser_checkpoint']

_BLOCK = {
    r'norm1\.(weight|bias)': r'ln1.{}',
    r'norm2\.(weight|bias)': r'ln2.{}',
    r'attn\.qkv\.(weight|bias)': r'attn.qkv.{}',
    r'attn\.proj\.(weight|bias)': r'attn.proj.{}',
    r'mlp\.fc1\.(weight|bias)': r'ffn.layers.0.0.{}',
    r'mlp\.fc2\.(weight|bias)': r'ffn.layers.1.{}',
}


def convert_dvt_denoiser(state_dict: Dict[str, Tensor], prefix: str = '') -> Dict[str, Tensor]:
    """Map official ``Denoiser`` keys (a raw state dict or a ``{'denoiser': ...}`` checkpoint,
    ``module.`` prefix optional) to :class:`mmmask.DVTDenoiser` keys under ``prefix``.

    Unknown keys raise ``ConversionError``.
    """
    state_dict = unwrap_state_dict(state_dict, ('denoiser', 'state_dict', 'model'))
    state_dict = {k[len('module.'):] if k.startswith('module.') else k: v
                  for k, v in state_dict.items()}
    p = prefix.replace('\\', '\\\\')
    rules = [(r'pos_embed', p + 'pos_embed'), (r'vit\..+', None)]
    for pattern, target in _BLOCK.items():
        rules.append((r'denoiser\.' + pattern, p + 'blocks.0.' + target.format(r'\1')))
        rules.append((r'denoiser\.(\d+)\.' + pattern,
                      p + r'blocks.\1.' + target.format(r'\2')))
    return dict(rename_keys(state_dict, rules, 'official DVT Denoiser'))


def load_dvt_denoiser_checkpoint(path: str) -> Dict[str, torch.Tensor]:
    """:class:`DVTDenoiser` keys from an official stage-2 checkpoint (``{'denoiser': ...}`` or its
    bare state dict) or a converted one (any prefix ending in ``denoiser.``, or none)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'no such denoiser checkpoint: {path}')
    ckpt = torch.load(path, map_location='cpu', weights_only=False)
    sd = ckpt['denoiser'] if isinstance(ckpt, dict) and isinstance(ckpt.get('denoiser'), dict) \
        else unwrap_state_dict(ckpt)
    official = re.compile(r'(module\.)?denoiser\.(\d+\.)?(norm1|norm2|attn|mlp)\.')
    if any(official.match(k) for k in sd):
        return convert_dvt_denoiser(sd)
    out = {k.split('denoiser.', 1)[1] if 'denoiser.' in k else k: v for k, v in sd.items()
           if 'denoiser.' in k or k.startswith(('blocks.', 'pos_embed'))}
    if not out:
        raise ValueError(f'{path} holds no DVT denoiser weights (expected official '
                         "'denoiser.*' or converted 'blocks.*' / '*denoiser.blocks.*' keys)")
    return out
