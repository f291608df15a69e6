"""Official PPMA checkpoints (github.com/zhongchenzhao/PPMA) to :class:`mmmask.models.PPMA`.

Handles the classification checkpoints (``best.pth``: key ``model``, with ``proj/norm/head``) and
the mmseg-0.x segmentation checkpoints (``iter_160000.pth``: ``state_dict`` with ``backbone.``,
``decode_head.`` and ``auxiliary_head.``). The RoPE ``Relpos.angle`` buffers are constants that
mmmask recomputes, so they are dropped.
"""
from typing import Dict

from torch import Tensor

from .common import rename_keys

_BLOCK = r'layers\.(\d+)\.blocks\.(\d+)\.'
_BACKBONE_RULES = [
    (r'patch_embed\.proj\.(\d+)\.(.+)', r'stem.\1.\2'),
    (r'layers\.(\d+)\.Relpos\.angle', None),
    (_BLOCK + r'pos\.conv\.(.+)', r'stages.\1.blocks.\2.cpe.conv.\3'),
    (_BLOCK + r'retention_layer_norm\.(.+)', r'stages.\1.blocks.\2.ln1.\3'),
    (_BLOCK + r'final_layer_norm\.(.+)', r'stages.\1.blocks.\2.ln2.\3'),
    (_BLOCK + r'retention\.path_embed\.dt_linear\.(.+)', r'stages.\1.blocks.\2.attn.path.dt_proj.\3'),
    (_BLOCK + r'retention\.path_embed\.(dt_bias|A_log)', r'stages.\1.blocks.\2.attn.path.\3'),
    (_BLOCK + r'retention\.((?:q|k|v|out)_proj|lepe\.conv)\.(.+)', r'stages.\1.blocks.\2.attn.\3.\4'),
    (_BLOCK + r'ffn\.(fc1|fc2|dwconv\.conv)\.(.+)', r'stages.\1.blocks.\2.ffn.\3.\4'),
    (_BLOCK + r'gamma_(1|2)', r'stages.\1.blocks.\2.gamma\3'),
    (r'layers\.(\d+)\.downsample\.reduction\.(.+)', r'stages.\1.downsample.0.\2'),
    (r'layers\.(\d+)\.downsample\.norm\.(.+)', r'stages.\1.downsample.1.\2'),
    (r'outnorm(\d+)\.(.+)', r'norm\1.\2'),
]
_CLS_HEAD_RULES = [
    (r'proj\.(.+)', r'head.proj.\1'),
    (r'norm\.(.+)', r'head.norm.\1'),
    (r'head\.(.+)', r'head.fc.\1'),
]


def convert_ppma(state_dict: Dict[str, Tensor], with_head: bool = True) -> Dict[str, Tensor]:
    """Map official PPMA keys to mmmask keys.

    Input is the bare official state dict of either checkpoint kind. Output keys:
    ``backbone.*`` (+ ``head.*`` for a classification checkpoint, mmpretrain ImageClassifier
    layout; + ``decode_head.*``/``auxiliary_head.*`` unchanged for a segmentation checkpoint).
    ``with_head=False`` keeps only ``backbone.*``. Unknown keys raise ``ConversionError``.
    """
    is_seg = any(k.startswith('backbone.') for k in state_dict)
    if is_seg:
        rules = [('backbone\\.' + p, None if r is None else 'backbone.' + r)
                 for p, r in _BACKBONE_RULES]
        rules += [(r'((?:decode|auxiliary)_head\..+)', r'\1' if with_head else None)]
        what = 'official PPMA segmentation (mmseg) checkpoint'
    else:
        rules = [(p, None if r is None else 'backbone.' + r) for p, r in _BACKBONE_RULES]
        rules += [(p, r if with_head else None) for p, r in _CLS_HEAD_RULES]
        what = 'official PPMA classification checkpoint'
    return rename_keys(state_dict, rules, what)
