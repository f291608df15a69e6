"""Official Sparsifiner checkpoints (github.com/lim142857/Sparsifiner,
``src/models/sparsifiner.py``) and the timm/DeiT checkpoints it starts from, to
:class:`mmmask.Sparsifiner` classifiers.

Official layout (timm DeiT): ``cls_token``, ``pos_embed``, ``patch_embed.proj``,
``blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, the predictor
``blocks.{i}.attn.mask_predictor.{proj_c_q,proj_c_k,proj_n,proj_back_n}``, ``norm``, ``head``;
training checkpoints wrap it in ``model`` / ``model_ema`` and DDP adds ``module.``. Output:
mmpretrain ``VisionTransformer`` keys under ``backbone.`` (predictor at
``backbone.layers.{i}.attn.bias_provider.*``) and ``VisionTransformerClsHead`` keys
(``head.layers.head.*``). A plain DeiT checkpoint (``deit_small_patch16_224-cd65a155.pth``) converts
the same way without predictor keys: the starting point of the official training.
"""
from typing import Dict, Optional

from torch import Tensor

from .common import TIMM_VIT_BACKBONE_RULES, ConversionError, rename_keys

__all__ = ['convert_sparsifiner', 'sparsifiner_arch_of']

_RULES = TIMM_VIT_BACKBONE_RULES + [
    (r'backbone\.blocks\.(\d+)\.attn\.mask_predictor\.(proj_n|proj_back_n)',
     r'backbone.layers.\1.attn.bias_provider.\2'),
    (r'backbone\.blocks\.(\d+)\.attn\.mask_predictor\.(proj_c_q|proj_c_k)\.(weight|bias)',
     r'backbone.layers.\1.attn.bias_provider.\2.\3'),
    (r'backbone\.head\.(weight|bias)', r'head.layers.head.\1'),
]


def convert_sparsifiner(state_dict: Dict[str, Tensor], with_head: bool = True,
                        require_predictor: bool = False) -> Dict[str, Tensor]:
    """Map official Sparsifiner (or timm DeiT) keys to mmmask classifier keys.

    ``with_head=False`` keeps only ``backbone.*`` (for ``init_cfg=dict(type='Pretrained',
    prefix='backbone.')``). ``require_predictor`` raises when no ``mask_predictor`` key is present
    (an official Sparsifiner checkpoint is expected, not a DeiT one). Unknown keys (e.g. a
    distilled DeiT's ``dist_token``) raise :class:`ConversionError`.
    """
    state_dict = {k[len('module.'):] if k.startswith('module.') else k: v
                  for k, v in state_dict.items()}
    if require_predictor and not any('mask_predictor' in k for k in state_dict):
        raise ConversionError('no blocks.*.attn.mask_predictor.* key: this is not an official '
                              'Sparsifiner checkpoint (a DeiT one converts without '
                              'require_predictor)')
    prefixed = {f'backbone.{k}': v for k, v in state_dict.items()}
    rules = [(p, r if (with_head or r is None or r.startswith('backbone.')) else None)
             for p, r in _RULES]
    return rename_keys(prefixed, rules, 'official Sparsifiner / timm DeiT')


def sparsifiner_arch_of(state_dict: Dict[str, Tensor]) -> Dict[str, Optional[int]]:
    """What a converted (mmmask) state dict implies: ``embed_dims``, ``num_layers``,
    ``feedforward_channels``, ``num_tokens`` and, with predictor keys, ``num_heads`` and
    ``reduced_n`` (``num_tokens // reduce_n_factor``)."""
    embed = state_dict['backbone.cls_token'].shape[-1]
    layers = 1 + max(int(k.split('.')[2]) for k in state_dict if k.startswith('backbone.layers.'))
    ffn = state_dict['backbone.layers.0.ffn.layers.0.0.weight'].shape[0]
    out = dict(embed_dims=embed, num_layers=layers, feedforward_channels=ffn,
               num_tokens=state_dict['backbone.pos_embed'].shape[1], num_heads=None,
               reduced_n=None)
    q = state_dict.get('backbone.layers.0.attn.bias_provider.proj_c_q.weight')
    if q is not None:
        out['num_heads'] = embed // q.shape[1]
        out['reduced_n'] = state_dict['backbone.layers.0.attn.bias_provider.proj_n'].shape[1]
    return out
