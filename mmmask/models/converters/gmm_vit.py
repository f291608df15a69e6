"""Official GMM-attention ViT checkpoints (github.com/CatworldLee/Gaussian-Mixture-Mask-Attention,
``models/vit.py`` ``ViT``, with ``is_GMM``, ``is_SLM`` or neither) to :class:`mmmask.GMMViT`.

Official layout: ``mask`` (the fixed distance prior, [1,1,N,N], not trainable), ``pos_embedding``,
``cls_token`` (plain ViT only), ``to_patch_embedding.1`` (a Linear on (p1 p2 c)-flattened patches),
``transformer.layers.{i}.0.{norm, fn.to_qkv, fn.to_out.0, fn.mask.*}`` (attention, pre-norm),
``transformer.layers.{i}.1.{norm, fn.net.0, fn.net.3}`` (FFN), ``mlp_head.{0,1}`` (LayerNorm,
Linear). GMM layers also hold ``fn.mask.mask`` — the same prior again — next to ``sigma``/``alpha``;
ELM layers hold their learnable N×N matrix under that name.

Output: :class:`mmmask.GMMViT` keys under ``backbone.`` (``mlp_head.0`` is the backbone's
``norm``) and ``head.fc.*`` for an mmpretrain ``LinearClsHead``. The distance prior is recomputed
by the model; the converter checks the checkpoint's copy against it.
"""
import math
import re
from collections import OrderedDict
from typing import Dict, Optional

import torch
from torch import Tensor

from .common import ConversionError

__all__ = ['convert_gmm_vit', 'gmm_vit_arch_of']

_LAYER = r'transformer\.layers\.(\d+)\.'
_RULES = [
    (r'pos_embedding', r'backbone.pos_embed'),
    (r'cls_token', r'backbone.cls_token'),
    (_LAYER + r'0\.norm\.(weight|bias)', r'backbone.layers.\1.ln1.\2'),
    (_LAYER + r'0\.fn\.to_qkv\.weight', r'backbone.layers.\1.attn.qkv.weight'),
    (_LAYER + r'0\.fn\.to_out\.0\.(weight|bias)', r'backbone.layers.\1.attn.proj.\2'),
    (_LAYER + r'0\.fn\.mask\.(sigma|alpha)', r'backbone.layers.\1.attn.bias_provider.\2'),
    (_LAYER + r'1\.norm\.(weight|bias)', r'backbone.layers.\1.ln2.\2'),
    (_LAYER + r'1\.fn\.net\.0\.(weight|bias)', r'backbone.layers.\1.ffn.fc1.\2'),
    (_LAYER + r'1\.fn\.net\.3\.(weight|bias)', r'backbone.layers.\1.ffn.fc2.\2'),
    (r'mlp_head\.0\.(weight|bias)', r'backbone.norm.\1'),
    (r'mlp_head\.1\.(weight|bias)', r'head.fc.\1'),
]
_RULES = [(re.compile(p), r) for p, r in _RULES]


def _check_prior(key: str, value: Tensor) -> None:
    from mmmask.models.backbones.gmm_vit import gaussian_distance_prior
    n = value.shape[-1]
    side = math.isqrt(n)
    expected = gaussian_distance_prior((side, side))
    if side * side != n or not torch.allclose(value.reshape(n, n).float(), expected, rtol=1e-3,
                                              atol=1e-6):
        raise ConversionError(f'{key} is not the official GMM distance prior of a {side}x{side} '
                              'grid: this is not an official GMM-ViT checkpoint')


def convert_gmm_vit(state_dict: Dict[str, Tensor], with_head: bool = True,
                    in_channels: int = 3) -> Dict[str, Tensor]:
    """Map an official ``ViT`` state dict (``module.`` prefix optional) to mmmask keys.

    ``with_head=False`` keeps only ``backbone.*`` (for ``init_cfg=dict(type='Pretrained',
    prefix='backbone.')``). The patch-embedding Linear becomes a Conv2d weight. Unknown keys and a
    prior that is not the official one raise :class:`ConversionError`.
    """
    state_dict = {k[len('module.'):] if k.startswith('module.') else k: v
                  for k, v in state_dict.items()}
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    unexpected = []
    for key, value in state_dict.items():
        if key == 'mask':
            _check_prior(key, value)
            continue
        m = re.fullmatch(_LAYER + r'0\.fn\.mask\.mask', key)
        if m:
            if value.dim() == 4:  # GMM: the shared prior again
                _check_prior(key, value)
            else:  # ELM: the learnable N×N matrix
                out[f'backbone.layers.{m.group(1)}.attn.bias_provider.mask'] = value
            continue
        if key.startswith('to_patch_embedding.1.'):
            if key.endswith('weight'):
                dim, patch_dim = value.shape
                p = math.isqrt(patch_dim // in_channels)
                if p * p * in_channels != patch_dim:
                    raise ConversionError(f'{key} {tuple(value.shape)}: {patch_dim} inputs are not '
                                          f'p·p·{in_channels} (pass in_channels)')
                value = value.reshape(dim, p, p, in_channels).permute(0, 3, 1, 2).contiguous()
            out['backbone.patch_embed.' + key.rsplit('.', 1)[1]] = value
            continue
        for pattern, repl in _RULES:
            if pattern.fullmatch(key):
                new = pattern.sub(repl, key)
                if with_head or new.startswith('backbone.'):
                    out[new] = value
                break
        else:
            unexpected.append(key)
    if unexpected:
        raise ConversionError(f'{len(unexpected)} key(s) are not official GMM-ViT keys: '
                              + ', '.join(unexpected[:20]))
    if 'backbone.pos_embed' not in out:
        raise ConversionError('no pos_embedding: not an official GMM-ViT checkpoint')
    return out


def gmm_vit_arch_of(state_dict: Dict[str, Tensor], num_heads: Optional[int] = None,
                    in_channels: int = 3) -> dict:
    """The :class:`mmmask.GMMViT` kwargs an official state dict implies.

    Heads follow from ``alpha`` for GMM checkpoints; for ELM / plain checkpoints
    (``inner_dim = heads·head_dims`` cannot be split from shapes) pass ``num_heads``.
    """
    sd = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state_dict.items()}
    if 'to_patch_embedding.1.weight' not in sd:
        raise ConversionError('no to_patch_embedding.1.weight: not an official GMM-ViT checkpoint')
    dim, patch_dim = sd['to_patch_embedding.1.weight'].shape
    patch = math.isqrt(patch_dim // in_channels)
    layers = sorted({int(m.group(1)) for k in sd for m in [re.match(_LAYER, k)] if m})
    depth = len(layers)
    mask = sd.get('transformer.layers.0.0.fn.mask.mask')
    if 'transformer.layers.0.0.fn.mask.alpha' in sd:
        mask_type = 'gmm'
        kernels, heads = sd['transformer.layers.0.0.fn.mask.alpha'].shape[:2]
    else:
        mask_type = 'elm' if mask is not None else None
        kernels = None
        heads = num_heads
    if num_heads is not None and heads != num_heads:
        raise ConversionError(f'the checkpoint has {heads} heads, not {num_heads}')
    if heads is None:
        raise ConversionError('an ELM / plain ViT checkpoint does not reveal its head count: pass '
                              'num_heads')
    inner = sd['transformer.layers.0.0.fn.to_qkv.weight'].shape[0] // 3
    hidden = sd['transformer.layers.0.1.fn.net.0.weight'].shape[0]
    n = sd['pos_embedding'].shape[1] - int('cls_token' in sd)
    side = math.isqrt(n)
    arch = dict(embed_dims=dim, num_layers=depth, num_heads=heads, head_dims=inner // heads,
                mlp_ratio=hidden / dim if hidden % dim else hidden // dim)
    kwargs = dict(arch=arch, img_size=side * patch, patch_size=patch, in_channels=in_channels,
                  mask_type=mask_type)
    if kernels is not None:
        kwargs['num_kernels'] = kernels
    return kwargs
