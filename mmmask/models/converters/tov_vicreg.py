"""Official TOV-VICReg checkpoints (github.com/mgoulao/TOV-VICReg) to :class:`mmmask.TOVVICReg`.

Official layouts: the full ``TOVVICReg`` state dict (``backbone.*`` = DINO ViT with
``patch_embed.proj``, ``blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``,
``cls_token``, ``pos_embed``; ``projector.{0,1,3,4,6}.*``; ``temporal_order_predictor.0.*``) and
the encoder that ``main.py`` saves (``final_encoder.pth``: the same ViT keys without the
``backbone.`` prefix). A DDP ``module.`` prefix is dropped. Output: mmpretrain
``VisionTransformer`` keys under ``backbone.`` (``norm`` → ``ln1``), :class:`VICRegProjector` keys
under ``neck.projector.`` and :class:`TemporalOrderHead` keys under ``head.fc.``.
"""
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from .common import TIMM_VIT_BACKBONE_RULES, ConversionError, rename_keys

__all__ = ['convert_tov_vicreg', 'bake_dino_pos_embed']

_BACKBONE_RULES = TIMM_VIT_BACKBONE_RULES + [
    (r'backbone\.head\.(weight|bias)', None),  # classifier of num_classes > 0 (not used)
]
_HEAD_RULES = [
    (r'projector\.(\d+)\.(weight|bias|running_mean|running_var|num_batches_tracked)',
     r'neck.projector.\1.\2'),
    (r'temporal_order_predictor\.0\.(weight|bias)', r'head.fc.\1'),
]
_BARE_VIT = ('cls_token', 'pos_embed', 'patch_embed.', 'blocks.', 'norm.')


def bake_dino_pos_embed(pos_embed: Tensor, grid: Tuple[int, int]) -> Tensor:
    """The official position embedding interpolated DINO-style (bicubic, ``+0.1`` trick) to
    ``grid`` once, so an mmpretrain ViT built for that input size gives the official outputs
    without interpolating at run time."""
    from mmmask.models.selfsup.gmml import dino_resize_pos_embed
    n = pos_embed.shape[1] - 1
    side = int(round(n**.5))
    if side * side != n:
        raise ConversionError(f'pos_embed of {n} patch positions is not a square grid')
    return dino_resize_pos_embed(pos_embed, (side, side), tuple(grid))


def convert_tov_vicreg(state_dict: Dict[str, Tensor], backbone_only: bool = False,
                       pos_grid: Optional[Tuple[int, int]] = None) -> Dict[str, Tensor]:
    """Map official TOV-VICReg keys to mmmask keys.

    Args:
        state_dict: a ``TOVVICReg`` state dict or a saved encoder (bare ViT keys).
        backbone_only: keep only ``backbone.*`` (``init_cfg=dict(type='Pretrained',
            prefix='backbone.')`` of a downstream ViT).
        pos_grid: bake the DINO-interpolated position embedding for this token grid (e.g.
            ``(10, 10)`` for 84×84 frames with patch 8).

    Unknown keys raise ``ConversionError``.
    """
    sd = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state_dict.items()}
    if sd and all(k.startswith(_BARE_VIT) for k in sd):
        sd = {'backbone.' + k: v for k, v in sd.items()}
    if not any(k.startswith('backbone.') for k in sd):
        raise ConversionError('no TOV-VICReg ViT keys (backbone.* or a saved encoder with '
                              f'cls_token/blocks.*) in this checkpoint; got {list(sd)[:8]}')
    rules = _BACKBONE_RULES + [(p, None if backbone_only else r) for p, r in _HEAD_RULES]
    out = rename_keys(sd, rules, 'official TOV-VICReg (TOVVICReg / VisionTransformer)')
    if pos_grid is not None:
        out['backbone.pos_embed'] = bake_dino_pos_embed(out['backbone.pos_embed'],
                                                        pos_grid).contiguous()
    return out
