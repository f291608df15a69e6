"""Official HPM (Haochen-Wang409/HPM, ``models_mae_learn_loss.MaskedAutoencoderViT``) ->
``mmmask.HPM``.

Encoder keys go to ``backbone.*`` (mmpretrain ``VisionTransformer`` names, so the backbone part
loads into ``mmpretrain.VisionTransformer`` with ``prefix='backbone.'``); the reconstruction
decoder to mmpretrain ``MAEPretrainDecoder`` names under ``neck.*``; the loss predictor
(``decoder_*_losspred``) to ``neck.loss_blocks/loss_norm/loss_pred``.
"""
from typing import Dict

from torch import Tensor

from .common import ConversionError, rename_keys

def _block_rules(src: str, dst: str):
    b = src + r'\.(\d+)\.'
    return [
        (b + r'norm1\.(weight|bias)', dst + r'.\1.ln1.\2'),
        (b + r'attn\.(qkv|proj)\.(weight|bias)', dst + r'.\1.attn.\2.\3'),
        (b + r'norm2\.(weight|bias)', dst + r'.\1.ln2.\2'),
        (b + r'mlp\.fc1\.(weight|bias)', dst + r'.\1.ffn.layers.0.0.\2'),
        (b + r'mlp\.fc2\.(weight|bias)', dst + r'.\1.ffn.layers.1.\2'),
    ]


_RULES = [
    (r'cls_token', 'backbone.cls_token'),
    (r'pos_embed', 'backbone.pos_embed'),
    (r'patch_embed\.proj\.(weight|bias)', r'backbone.patch_embed.projection.\1'),
    *_block_rules('blocks', 'backbone.layers'),
    (r'norm\.(weight|bias)', r'backbone.ln1.\1'),
    (r'decoder_embed\.(weight|bias)', r'neck.decoder_embed.\1'),
    (r'mask_token', 'neck.mask_token'),
    (r'decoder_pos_embed', 'neck.decoder_pos_embed'),
    *_block_rules('decoder_blocks', 'neck.decoder_blocks'),
    (r'decoder_norm\.(weight|bias)', r'neck.ln1.\1'),
    (r'decoder_pred\.(weight|bias)', r'neck.decoder_pred.\1'),
    *_block_rules('decoder_blocks_losspred', 'neck.loss_blocks'),
    (r'decoder_norm_losspred\.(weight|bias)', r'neck.loss_norm.\1'),
    (r'decoder_pred_losspred\.(weight|bias)', r'neck.loss_pred.\1'),
    (r'vis_mask_token', None),  # the unused ``vis_mask_ratio`` path
]


def convert_hpm(state_dict: Dict[str, Tensor], backbone_only: bool = False,
                with_teacher: bool = False) -> Dict[str, Tensor]:
    """Rename an official HPM state dict (``model`` of a ``checkpoint-*.pth``; a DDP ``module.``
    prefix is stripped).

    Args:
        backbone_only: keep only ``backbone.*`` (for ``init_cfg=dict(type='Pretrained',
            prefix='backbone.')``).
        with_teacher: also fill the EMA teacher (``teacher.module.0`` = backbone,
            ``teacher.module.1`` = neck) with the same weights, so the result loads strictly into
            ``mmmask.HPM`` (e.g. to resume pretraining; the official ``model_ema`` is not saved).
    """
    clean = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state_dict.items()}
    if 'patch_embed.proj.weight' not in clean:
        raise ConversionError('not an HPM/MAE checkpoint: no patch_embed.proj.weight '
                              f'(first keys: {", ".join(list(state_dict)[:8])})')
    out = dict(rename_keys(clean, _RULES, 'HPM'))
    if backbone_only:
        return {k: v for k, v in out.items() if k.startswith('backbone.')}
    if with_teacher:
        for k, v in list(out.items()):
            part, rest = k.split('.', 1)
            out[f'teacher.module.{0 if part == "backbone" else 1}.{rest}'] = v.clone()
    return out
