"""Official kMaX-DeepLab (bytedance/kmax-deeplab, detectron2) checkpoint keys → mmmask keys.

The official model is ``backbone.*`` (ResNet or ConvNeXt) + ``sem_seg_head.pixel_decoder.*``
(``kMaXPixelDecoder``) + ``sem_seg_head.predictor.*`` (``kMaXTransformerDecoder``, including the
auxiliary semantic predictor). They become the keys of :class:`mmmask.models.PolyMaX`:

* ``pixel_decoder.*`` — :class:`KMaXPixelDecoder`;
* ``heads.<task>.decoder.*`` — :class:`KMaXTransformerDecoder` (``task`` = ``semantic``);
* ``heads.<task>.aux_semantic_head.*`` — :class:`KMaXAuxSemanticHead`;
* ``backbone.*`` — mmpretrain ``ConvNeXt`` (official ConvNeXt only; see :func:`convert_kmax`).

``_cluster_centers`` is an ``nn.Embedding(C, K)`` whose weight is already ``(C, K)``, the layout of
``KMaXTransformerDecoder.cluster_centers``: it is copied as is. The official ``_predcitor``
spelling (sic) is matched. Every official BN is ``SyncBatchNorm`` with the usual buffers.
"""
from collections import OrderedDict
from typing import Dict

from torch import Tensor

from .common import ConversionError, rename_keys

_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'
_CONVBN = r'(conv\.weight|conv\.bias|norm\.' + _BN + r')'

#: ``sem_seg_head.pixel_decoder.*`` (prefix removed) → :class:`KMaXPixelDecoder` keys.
PIXEL_DECODER_RULES = [
    (r'_in_norms\.(\d+)\.(weight|bias)', r'in_norms.\1.\2'),
    (r'_resized_fuses\.(\d+)\._conv_bn_low\.conv\.weight', r'resized_fuses.\1.low_proj.conv.weight'),
    (r'_resized_fuses\.(\d+)\._conv_bn_low\.norm\.' + _BN, r'resized_fuses.\1.low_proj.bn.\2'),
    (r'_resized_fuses\.(\d+)\._conv_bn_high\.conv\.weight',
     r'resized_fuses.\1.high_proj.conv.weight'),
    (r'_resized_fuses\.(\d+)\._conv_bn_high\.norm\.' + _BN, r'resized_fuses.\1.high_proj.bn.\2'),
    (r'_stages\.(\d+)\._blocks\.(\d+)\._conv(\d)_bn(?:_act)?\.conv\.weight',
     r'stages.\1.\2.conv\3.conv.weight'),
    (r'_stages\.(\d+)\._blocks\.(\d+)\._conv(\d)_bn(?:_act)?\.norm\.' + _BN,
     r'stages.\1.\2.conv\3.bn.\4'),
    (r'_stages\.(\d+)\._blocks\.(\d+)\._shortcut\.conv\.weight',
     r'stages.\1.\2.shortcut.conv.weight'),
    (r'_stages\.(\d+)\._blocks\.(\d+)\._shortcut\.norm\.' + _BN, r'stages.\1.\2.shortcut.bn.\3'),
    (r'_stages\.(\d+)\._blocks\.(\d+)\._attention\._(height|width)_axis\.qkv_transform\.conv\.weight',
     r'stages.\1.\2.attention.\3_axis.qkv.weight'),
    (r'_stages\.(\d+)\._blocks\.(\d+)\._attention\._(height|width)_axis\._(query|key|value)_rpe'
     r'\._embeddings\.weight', r'stages.\1.\2.attention.\3_axis.\4_rpe.embedding'),
    (r'_stages\.(\d+)\._blocks\.(\d+)\._attention\._(height|width)_axis\._batch_norm_qkv\.' + _BN,
     r'stages.\1.\2.attention.\3_axis.qkv_norm.\4'),
    (r'_stages\.(\d+)\._blocks\.(\d+)\._attention\._(height|width)_axis\._batch_norm_similarity\.'
     + _BN, r'stages.\1.\2.attention.\3_axis.similarity_norm.\4'),
    (r'_stages\.(\d+)\._blocks\.(\d+)\._attention\._(height|width)_axis'
     r'\._batch_norm_retrieved_output\.' + _BN, r'stages.\1.\2.attention.\3_axis.output_norm.\4'),
]

# official ConvBN (``conv`` + ``norm``) → mmmask ConvNormAct (``conv`` + ``norm.norm``)
_PREDICTOR_PARTS = {
    '_pixel_space_head_conv0bnact': 'pixel_dw',
    '_pixel_space_head_conv1bnact': 'pixel_pw',
    '_pixel_space_head_last_convbn': 'pixel_out',
    '_transformer_mask_head': 'mask_head',
    '_transformer_class_head': 'class_head',
}
_LAYER_PARTS = {
    '_pixel_conv1_bn_act': 'pixel_proj',
    '_query_conv1_bn_act': 'query_proj',
    '_pixel_v_conv_bn': 'pixel_value',
    '_query_qkv_conv_bn': 'qkv',
    '_query_conv3_bn': 'attn_out',
    '_query_ffn_conv1_bn_act': 'ffn_in',
    '_query_ffn_conv2_bn': 'ffn_out',
    '_kmeans_query_conv3_bn': 'kmeans_out',
}
_AUX_PARTS = {
    '_aspp\\._aspp_conv(\\d)': r'aspp.branches.\1',
    '_aspp\\._aspp_pool': 'aspp.pool_branch',
    '_aspp\\._proj_conv_bn_act': 'aspp.project',
    '_low_level_projection_os8': 'low_projs.0',
    '_low_level_fusion_os8_conv0_bn_act': 'fuses.0.0',
    '_low_level_fusion_os8_conv1_bn_act': 'fuses.0.1',
    '_low_level_projection_os4': 'low_projs.1',
    '_low_level_fusion_os4_conv0_bn_act': 'fuses.1.0',
    '_low_level_fusion_os4_conv1_bn_act': 'fuses.1.1',
    'conv_block_0': 'head.0',
    'conv_block_1': 'head.1',
    'final_conv': 'head.2',
}


def _convbn_rules(src: str, dst: str):
    """Rules for one official ConvBN at regex ``src`` → ConvNormAct at ``dst`` (may use groups)."""
    n = src.count('(') - src.count('\\(')  # capture groups inside src
    return [(src + r'\.conv\.(weight|bias)', dst + rf'.conv.\{n + 1}'),
            (src + r'\.norm\.' + _BN, dst + rf'.norm.norm.\{n + 1}')]


def _decoder_rules(decoder: str, aux: str):
    rules = [(r'_cluster_centers\.weight', decoder + 'cluster_centers')]
    pred_bn = (r'_pixel_space_mask_batch_norm\.' + _BN)
    for src, dst in _PREDICTOR_PARTS.items():
        rules += _convbn_rules(r'_predcitor\.' + src, decoder + 'predictor.' + dst)
        rules += _convbn_rules(r'_kmax_transformer_layers\.(\d+)\._predcitor\.' + src,
                               decoder + r'layers.\1.predictor.' + dst)
    rules += [
        (r'_predcitor\.' + pred_bn, decoder + r'predictor.mask_norm.norm.\1'),
        (r'_kmax_transformer_layers\.(\d+)\._predcitor\.' + pred_bn,
         decoder + r'layers.\1.predictor.mask_norm.norm.\2'),
        (r'_kmax_transformer_layers\.(\d+)\._kmeans_query_batch_norm_retrieved_value\.' + _BN,
         decoder + r'layers.\1.kmeans_norm.norm.\2'),
        (r'_kmax_transformer_layers\.(\d+)\._query_self_attention\._batch_norm_similarity\.'
         + _BN, decoder + r'layers.\1.sim_norm.norm.\2'),
        (r'_kmax_transformer_layers\.(\d+)\._query_self_attention\._batch_norm_retrieved_value\.'
         + _BN, decoder + r'layers.\1.attn_value_norm.norm.\2'),
    ]
    for src, dst in _LAYER_PARTS.items():
        rules += _convbn_rules(r'_kmax_transformer_layers\.(\d+)\.' + src,
                               decoder + r'layers.\1.' + dst)
    rules += _convbn_rules(r'_class_embedding_projection', decoder + 'class_embed_proj')
    rules += _convbn_rules(r'_mask_embedding_projection', decoder + 'mask_embed_proj')
    for src, dst in _AUX_PARTS.items():
        rules += _convbn_rules(r'_auxiliary_semantic_predictor\.' + src, aux + dst)
    return rules


def convert_kmax_pixel_decoder(state_dict: Dict[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """Keys of one official ``kMaXPixelDecoder`` (no prefix) → :class:`KMaXPixelDecoder` keys."""
    return rename_keys(state_dict, PIXEL_DECODER_RULES, 'kMaX pixel decoder')


def convert_kmax_transformer_decoder(state_dict: Dict[str, Tensor], decoder_prefix: str = '',
                                     aux_prefix: str = 'aux_semantic_head.'
                                     ) -> 'OrderedDict[str, Tensor]':
    """Keys of one official ``kMaXTransformerDecoder`` (no prefix) → ``decoder_prefix`` +
    :class:`KMaXTransformerDecoder` keys and ``aux_prefix`` + :class:`KMaXAuxSemanticHead` keys.

    Only the default auxiliary predictor (``USE_AUX_SEMANTIC_DECODER: True``, ASPP + two low-level
    fusions) has an mmmask counterpart; the plain 3-conv variant raises :class:`ConversionError`.
    """
    if any(k.startswith('_auxiliary_semantic_predictor.0.') for k in state_dict):
        raise ConversionError('this checkpoint uses the plain auxiliary semantic predictor '
                              '(USE_AUX_SEMANTIC_DECODER=False), which KMaXAuxSemanticHead does '
                              'not implement')
    return rename_keys(state_dict, _decoder_rules(decoder_prefix, aux_prefix),
                       'kMaX transformer decoder')


#: official ConvNeXt (``kmax_deeplab/modeling/backbone/convnext.py``) → mmpretrain ``ConvNeXt``.
CONVNEXT_RULES = [
    (r'downsample_layers\.(\d+)\.([01])\.(weight|bias)', r'downsample_layers.\1.\2.\3'),
    (r'stages\.(\d+)\.(\d+)\.dwconv\.(weight|bias)', r'stages.\1.\2.depthwise_conv.\3'),
    (r'stages\.(\d+)\.(\d+)\.norm\.(weight|bias)', r'stages.\1.\2.norm.\3'),
    (r'stages\.(\d+)\.(\d+)\.pwconv([12])\.(weight|bias)', r'stages.\1.\2.pointwise_conv\3.\4'),
    (r'stages\.(\d+)\.(\d+)\.gamma', r'stages.\1.\2.gamma'),
]


def convert_kmax(state_dict: Dict[str, Tensor], task: str = 'semantic',
                 in_norm_to_backbone: bool = False, backbone: bool = True
                 ) -> 'OrderedDict[str, Tensor]':
    """A full official checkpoint (``backbone.*``, ``sem_seg_head.*``) → :class:`PolyMaX` keys.

    Args:
        state_dict: the official ``model`` dict (or just its ``sem_seg_head.*`` part).
        task: the PolyMaX head that receives the transformer decoder (``heads.<task>.``).
        in_norm_to_backbone: map the pixel decoder's input LayerNorms ``_in_norms.{0..3}`` (res5 →
            res2) to mmpretrain ConvNeXt's output norms ``backbone.norm{3..0}``, for configs with
            ``KMaXPixelDecoder(in_norm=False)`` (the same eps 1e-6 channels-first LayerNorm).
            Otherwise they become ``pixel_decoder.in_norms.*``.
        backbone: convert an official ConvNeXt backbone to mmpretrain ``ConvNeXt`` keys. The keys
            map one to one, but mmpretrain's ConvNeXt does not apply the official zero padding
            before every downsampling layer (the 4k+1 input-size convention), so the features are
            not identical. A ResNet backbone (detectron2 naming) is not converted: it raises.
            With ``backbone=False`` all ``backbone.*`` keys are dropped.
    """
    bb = {k[len('backbone.'):]: v for k, v in state_dict.items() if k.startswith('backbone.')}
    pd = {k[len('sem_seg_head.pixel_decoder.'):]: v for k, v in state_dict.items()
          if k.startswith('sem_seg_head.pixel_decoder.')}
    td = {k[len('sem_seg_head.predictor.'):]: v for k, v in state_dict.items()
          if k.startswith('sem_seg_head.predictor.')}
    others = [k for k in state_dict
              if not k.startswith(('backbone.', 'sem_seg_head.pixel_decoder.',
                                   'sem_seg_head.predictor.'))
              and k not in ('pixel_mean', 'pixel_std')]
    if others or not (pd and td):
        shown = ', '.join(others[:10]) or '(no sem_seg_head.{pixel_decoder,predictor}.* keys)'
        raise ConversionError(f'not an official kMaX-DeepLab checkpoint: {shown}')
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    if bb and backbone:
        if not any(k.startswith('downsample_layers.') for k in bb):
            raise ConversionError('only the official ConvNeXt backbone is converted (this one looks '
                                  'like a detectron2 ResNet); pass backbone=False to drop it')
        out.update(('backbone.' + k, v)
                   for k, v in rename_keys(bb, CONVNEXT_RULES, 'kMaX ConvNeXt').items())
    for k, v in convert_kmax_pixel_decoder(pd).items():
        if in_norm_to_backbone and k.startswith('in_norms.'):
            _, level, name = k.split('.')
            out[f'backbone.norm{3 - int(level)}.{name}'] = v
        else:
            out['pixel_decoder.' + k] = v
    out.update(convert_kmax_transformer_decoder(
        td, decoder_prefix=f'heads.{task}.decoder.',
        aux_prefix=f'heads.{task}.aux_semantic_head.'))
    return out
