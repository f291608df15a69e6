"""Official GMML checkpoints (github.com/Sara-Ahmed/GMML, ``FullpiplineSiT``) to
:class:`mmmask.GMML`.

Official layout: ``backbone.*`` (DINO/timm-style ViT: ``patch_embed.proj``, ``blocks.{i}.{norm1,
attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``, ``cls_token``, ``pos_embed``) and
``head_recons.*`` (``mlp.{0,2,4}``, ``convTrans``); a DDP checkpoint (``SiT_model``) prefixes
``module.``. Output: mmpretrain ``VisionTransformer`` keys under ``backbone.`` (the final ``norm``
becomes ``ln1``) and :class:`mmmask.GMMLReconHead` keys under ``head.``.
"""
from typing import Dict

from torch import Tensor

from .common import TIMM_VIT_BACKBONE_RULES, rename_keys

_RULES = TIMM_VIT_BACKBONE_RULES + [
    (r'backbone\.(head_class|head_data)\..+', None),  # classification heads (fine-tuning only)
    (r'head_recons\.mlp\.(0|2|4)\.(weight|bias)', r'head.mlp.\1.\2'),
    (r'head_recons\.convTrans\.(weight|bias)', r'head.deconv.\1'),
]


def convert_gmml(state_dict: Dict[str, Tensor], with_head: bool = True) -> Dict[str, Tensor]:
    """Map official GMML keys (``module.`` prefix optional) to mmmask keys.

    ``with_head=False`` keeps only ``backbone.*`` (for ``init_cfg=dict(type='Pretrained',
    prefix='backbone.')``). Unknown keys raise ``ConversionError``.
    """
    state_dict = {k[len('module.'):] if k.startswith('module.') else k: v
                  for k, v in state_dict.items()}
    rules = [(p, r if (with_head or r is None or r.startswith('backbone.')) else None)
             for p, r in _RULES]
    return rename_keys(state_dict, rules, 'official GMML (FullpiplineSiT)')
