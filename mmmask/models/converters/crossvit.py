"""Official CrossViT checkpoints (github.com/IBM/CrossViT ``VisionTransformer``) and timm
``CrossVit`` checkpoints to :class:`mmmask.CrossViT` + :class:`mmmask.MultiBranchLinearClsHead`.

Official layout: ``patch_embed.{i}.proj[.{0,2,4}]``, ``pos_embed.{i}`` / ``cls_token.{i}``
(``ParameterList``s; timm names them ``pos_embed_{i}`` / ``cls_token_{i}``),
``blocks.{k}.blocks.{d}.{j}.*`` (timm ``Block``), ``blocks.{k}.{projs,revert_projs}.{i}.{0,2}``,
``blocks.{k}.fusion.{i}.*`` (one bare ``CrossAttentionBlock`` when ``d_c = 0``) or
``blocks.{k}.fusion.{i}.{j}.*`` (a ``Sequential`` when ``d_c >= 1``), ``norm.{i}``, ``head.{i}``.
Ours: everything under ``backbone.`` with ``pos_embed_{i}`` / ``cls_token_{i}`` and the fusion
always a ``Sequential`` (``fusion.{i}.0.*`` for ``d_c = 0``); ``head.{i}`` → ``head.fcs.{i}``.
"""
from typing import Dict

from torch import Tensor

from .common import rename_keys

__all__ = ['convert_crossvit']

_B = r'blocks\.(\d+)\.'
_RULES = [
    (r'(pos_embed|cls_token)[._](\d+)', r'backbone.\1_\2'),
    (r'patch_embed\.(\d+)\.proj\.((\d\.)?(weight|bias))', r'backbone.patch_embed.\1.proj.\2'),
    (_B + r'blocks\.(\d+)\.(\d+)\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.'
     r'(weight|bias)', r'backbone.blocks.\1.blocks.\2.\3.\4.\5'),
    (_B + r'(projs|revert_projs)\.(\d+)\.(0|2)\.(weight|bias)', r'backbone.blocks.\1.\2.\3.\4.\5'),
    # d_c = 0: a bare CrossAttentionBlock -> the first (only) block of our Sequential
    (_B + r'fusion\.(\d+)\.(norm1|attn\.wq|attn\.wk|attn\.wv|attn\.proj)\.(weight|bias)',
     r'backbone.blocks.\1.fusion.\2.0.\3.\4'),
    (_B + r'fusion\.(\d+)\.(\d+)\.(norm1|attn\.wq|attn\.wk|attn\.wv|attn\.proj)\.(weight|bias)',
     r'backbone.blocks.\1.fusion.\2.\3.\4.\5'),
    (r'norm\.(\d+)\.(weight|bias)', r'backbone.norm.\1.\2'),
    (r'head\.(\d+)\.(weight|bias)', r'head.fcs.\1.\2'),
]


def convert_crossvit(state_dict: Dict[str, Tensor], with_head: bool = True) -> Dict[str, Tensor]:
    """Map official (or timm) CrossViT keys, ``module.`` prefix optional, to mmmask keys.

    ``with_head=False`` keeps only ``backbone.*`` (for ``init_cfg=dict(type='Pretrained',
    prefix='backbone.')``). Keys of other models (e.g. the T2T hybrid variants) raise
    ``ConversionError``.
    """
    state_dict = {k[len('module.'):] if k.startswith('module.') else k: v
                  for k, v in state_dict.items()}
    rules = [(p, r if (with_head or r.startswith('backbone.')) else None) for p, r in _RULES]
    return rename_keys(state_dict, rules, 'official/timm CrossViT')
