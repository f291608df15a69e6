"""Official ECO-M2F checkpoints (github.com/GYeow/ECO-M2F, a detectron2 Mask2Former fork) to mmdet.

Maps the detectron2 keys of the released models to an mmdet ``Mask2Former`` whose pixel decoder
is :class:`mmmask.models.layers.EarlyExitMSDeformAttnPixelDecoder`:

* ``sem_seg_head.pixel_decoder.*`` → ``panoptic_head.pixel_decoder.*``. ``input_proj.{i}`` →
  ``input_convs.{i}`` keeps the index: both codes order the encoder levels from the lowest
  resolution (index 0 = res5) up. ``transformer.encoder.gt.head`` (the gate) → ``gate.fc``.
  ``adapter_1``/``layer_1`` (the extra FPN level) → ``lateral_convs.0``/``output_convs.0``.
* ``sem_seg_head.predictor.*`` (``MultiScaleMaskedTransformerDecoder``) →
  ``panoptic_head.transformer_decoder.*`` and the head's embeddings. detectron2 runs cross-,
  then self-attention, then the FFN, as mmdet's layer whose ``norms.{0,1,2}`` follow that order.
* ``backbone.*`` (detectron2's Swin) → mmdet ``SwinTransformer`` keys, with the patch-merging
  weights reordered for mmdet's ``nn.Unfold`` layout (as mmdet's ``swinv1_to_mmdet.py``).
* ``criterion.empty_weight``, ``pixel_mean``/``pixel_std`` (constants mmdet keeps elsewhere) are
  dropped. Anything else raises :class:`ConversionError`.
"""
from typing import Dict

from torch import Tensor

from .common import rename_keys

_ENC = r'transformer\.encoder\.layers\.(\d+)\.'
#: official pixel decoder (without prefix) → EarlyExitMSDeformAttnPixelDecoder.
PIXEL_DECODER_RULES = [
    (r'input_proj\.(\d+)\.0\.(weight|bias)', r'input_convs.\1.conv.\2'),
    (r'input_proj\.(\d+)\.1\.(weight|bias)', r'input_convs.\1.gn.\2'),
    (r'transformer\.level_embed', r'level_encoding.weight'),
    (_ENC + r'self_attn\.(sampling_offsets|attention_weights|value_proj|output_proj)\.(.+)',
     r'encoder.layers.\1.self_attn.\2.\3'),
    (_ENC + r'norm1\.(.+)', r'encoder.layers.\1.norms.0.\2'),
    (_ENC + r'norm2\.(.+)', r'encoder.layers.\1.norms.1.\2'),
    (_ENC + r'linear1\.(.+)', r'encoder.layers.\1.ffn.layers.0.0.\2'),
    (_ENC + r'linear2\.(.+)', r'encoder.layers.\1.ffn.layers.1.\2'),
    (r'transformer\.encoder\.gt\.head\.(weight|bias)', r'gate.fc.\1'),
    (r'mask_features\.(weight|bias)', r'mask_feature.\1'),
    (r'adapter_(\d+)\.weight', r'lateral_convs.@\1.conv.weight'),
    (r'adapter_(\d+)\.norm\.(.+)', r'lateral_convs.@\1.gn.\2'),
    (r'layer_(\d+)\.weight', r'output_convs.@\1.conv.weight'),
    (r'layer_(\d+)\.norm\.(.+)', r'output_convs.@\1.gn.\2'),
]

_DEC = r'predictor\.transformer_'
#: official predictor (after ``sem_seg_head.``) → mmdet Mask2FormerHead (after ``panoptic_head.``).
PREDICTOR_RULES = [
    (_DEC + r'cross_attention_layers\.(\d+)\.multihead_attn\.(.+)',
     r'transformer_decoder.layers.\1.cross_attn.attn.\2'),
    (_DEC + r'cross_attention_layers\.(\d+)\.norm\.(.+)',
     r'transformer_decoder.layers.\1.norms.0.\2'),
    (_DEC + r'self_attention_layers\.(\d+)\.self_attn\.(.+)',
     r'transformer_decoder.layers.\1.self_attn.attn.\2'),
    (_DEC + r'self_attention_layers\.(\d+)\.norm\.(.+)',
     r'transformer_decoder.layers.\1.norms.1.\2'),
    (_DEC + r'ffn_layers\.(\d+)\.linear1\.(.+)',
     r'transformer_decoder.layers.\1.ffn.layers.0.0.\2'),
    (_DEC + r'ffn_layers\.(\d+)\.linear2\.(.+)', r'transformer_decoder.layers.\1.ffn.layers.1.\2'),
    (_DEC + r'ffn_layers\.(\d+)\.norm\.(.+)', r'transformer_decoder.layers.\1.norms.2.\2'),
    (r'predictor\.decoder_norm\.(.+)', r'transformer_decoder.post_norm.\1'),
    (r'predictor\.(query_feat|query_embed|level_embed)\.weight', r'\1.weight'),
    (r'predictor\.input_proj\.(\d+)\.(weight|bias)', r'decoder_input_projs.\1.\2'),
    (r'predictor\.class_embed\.(.+)', r'cls_embed.\1'),
    (r'predictor\.mask_embed\.layers\.(\d+)\.(.+)', r'mask_embed.@@\1.\2'),
]

_BLK = r'backbone\.layers\.(\d+)\.blocks\.(\d+)\.'
#: detectron2 Swin (``D2SwinTransformer``) → mmdet ``SwinTransformer`` (both under ``backbone.``).
SWIN_RULES = [
    (r'backbone\.patch_embed\.proj\.(.+)', r'backbone.patch_embed.projection.\1'),
    (r'backbone\.patch_embed\.norm\.(.+)', r'backbone.patch_embed.norm.\1'),
    (_BLK + r'attn\.(.+)', r'backbone.stages.\1.blocks.\2.attn.w_msa.\3'),
    (_BLK + r'mlp\.fc1\.(.+)', r'backbone.stages.\1.blocks.\2.ffn.layers.0.0.\3'),
    (_BLK + r'mlp\.fc2\.(.+)', r'backbone.stages.\1.blocks.\2.ffn.layers.1.\3'),
    (_BLK + r'(norm1|norm2)\.(.+)', r'backbone.stages.\1.blocks.\2.\3.\4'),
    (r'backbone\.layers\.(\d+)\.downsample\.(reduction|norm)\.(.+)',
     r'backbone.stages.\1.downsample.\2.\3'),
    (r'backbone\.(norm\d)\.(.+)', r'backbone.\1.\2'),
]
DROPPED = [(r'criterion\..+', None), (r'pixel_(mean|std)', None)]


def _fix_indices(key: str) -> str:
    """``@i`` → ``i − 1`` (adapter_1 is lateral_convs.0), ``@@i`` → ``2·i`` (MLP in Sequential)."""
    import re
    key = re.sub(r'@@(\d+)', lambda m: str(2 * int(m.group(1))), key)
    return re.sub(r'@(\d+)', lambda m: str(int(m.group(1)) - 1), key)


def _unfold_order_weight(x: Tensor) -> Tensor:
    """Patch-merging reduction weight: detectron2's (x0, x1, x2, x3) concat → mmdet's unfold."""
    out_ch, in_ch = x.shape
    return x.reshape(out_ch, 4, in_ch // 4)[:, [0, 2, 1, 3], :].transpose(1, 2).reshape(
        out_ch, in_ch)


def _unfold_order_norm(x: Tensor) -> Tensor:
    in_ch = x.shape[0]
    return x.reshape(4, in_ch // 4)[[0, 2, 1, 3], :].transpose(0, 1).reshape(in_ch)


def convert_eco_m2f_pixel_decoder(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Official ``MSDeformAttnPixelDecoder`` keys (no prefix) → our pixel decoder keys."""
    out = rename_keys(state_dict, PIXEL_DECODER_RULES, 'official ECO-M2F pixel decoder')
    return {_fix_indices(k): v for k, v in out.items()}


def convert_eco_m2f(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """A whole official ECO-M2F (detectron2) checkpoint → mmdet ``Mask2Former`` keys.

    Output: ``backbone.*`` (Swin), ``panoptic_head.pixel_decoder.*`` and ``panoptic_head.*``.
    """
    rules = [(r'sem_seg_head\.pixel_decoder\.' + p, 'panoptic_head.pixel_decoder.' + r)
             for p, r in PIXEL_DECODER_RULES]
    rules += [(r'sem_seg_head\.' + p, 'panoptic_head.' + r) for p, r in PREDICTOR_RULES]
    rules += SWIN_RULES + DROPPED
    out = rename_keys(state_dict, rules, 'official ECO-M2F (detectron2 Mask2Former + Swin)')
    converted = {}
    for key, value in out.items():
        key = _fix_indices(key)
        if '.downsample.reduction.' in key:
            value = _unfold_order_weight(value)
        elif '.downsample.norm.' in key:
            value = _unfold_order_norm(value)
        converted[key] = value
    return converted
