"""PEM heads (Cavagnero et al., "PEM: Prototype-based Efficient MaskFormer for Image Segmentation",
CVPR 2024) for mmdet (panoptic, with ``mmdet.Mask2Former`` + ``MaskFormerFusionHead``) and mmseg
(semantic, in ``EncoderDecoder``).

Both subclass the upstream Mask2Former heads and keep their matching, point-sampled losses and
inference; they replace the pixel decoder (:class:`~mmmask.models.layers.PEMPixelDecoder`), the
transformer decoder (:class:`~mmmask.models.layers.PEMTransformerDecoder`) and the attention mask:
PEM passes the raw mask logits of the previous prediction (hidden = logit < 0) instead of a boolean
per-head mask.
"""
import copy
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import Conv2d
from mmdet.models.dense_heads import Mask2FormerHead as MMDetMask2FormerHead
from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.models.layers import SinePositionalEncoding
from mmengine.model import caffe2_xavier_init
from mmengine.registry import DefaultScope
from mmseg.models.decode_heads import Mask2FormerHead as MMSegMask2FormerHead
from torch import Tensor

from ...registry import MODELS, build_in_scope
from ..layers.pem_transformer_decoder import PEMTransformerDecoder

_LOSS_CLS = dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0,
                 reduction='mean')
_LOSS_MASK = dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, reduction='mean',
                  loss_weight=5.0)
_LOSS_DICE = dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True, reduction='mean',
                  naive_dice=True, eps=1.0, loss_weight=5.0)


class PEMHeadMixin:
    """Layers and forward shared by :class:`PEMHead` and :class:`PEMSegHead`.

    The attribute names follow mmdet's ``Mask2FormerHead`` (``pixel_decoder``,
    ``transformer_decoder``, ``decoder_input_projs``, ``query_feat``, ``query_embed``,
    ``level_embed``, ``cls_embed``, ``mask_embed``), so the upstream loss and predict code runs
    unchanged.
    """

    num_transformer_feat_level = 3

    def _init_pem(self, in_channels: Sequence[int], feat_channels: int, out_channels: int,
                  num_classes: int, num_queries: int, pixel_decoder: dict,
                  transformer_decoder: dict, enforce_decoder_input_project: bool,
                  positional_encoding: Optional[dict], loss_cls: dict, loss_mask: dict,
                  loss_dice: dict, train_cfg: Optional[dict], test_cfg: Optional[dict]) -> None:
        self.num_classes = num_classes
        self.num_queries = num_queries
        pixel_decoder = dict(copy.deepcopy(pixel_decoder), in_channels=list(in_channels),
                             out_channels=out_channels)
        pixel_decoder.setdefault('type', 'mmmask.PEMPixelDecoder')
        self.pixel_decoder = build_in_scope(MODELS, pixel_decoder)
        feat = self.pixel_decoder.feat_channels
        transformer_decoder = copy.deepcopy(transformer_decoder)
        transformer_decoder.setdefault('type', 'mmmask.PEMTransformerDecoder')
        transformer_decoder.setdefault('embed_dims', feat_channels)
        self.transformer_decoder: PEMTransformerDecoder = build_in_scope(
            MODELS, transformer_decoder)
        self.num_heads = self.transformer_decoder.num_heads
        self.num_transformer_decoder_layers = self.transformer_decoder.num_layers
        dims = self.decoder_embed_dims = self.transformer_decoder.embed_dims
        self.decoder_input_projs = nn.ModuleList(
            Conv2d(feat, dims, 1) if (feat != dims or enforce_decoder_input_project)
            else nn.Identity() for _ in range(self.num_transformer_feat_level))
        positional_encoding = dict(positional_encoding or dict(num_feats=dims // 2,
                                                               normalize=True))
        self.decoder_positional_encoding = SinePositionalEncoding(**positional_encoding)
        self.query_embed = nn.Embedding(num_queries, dims)
        self.query_feat = nn.Embedding(num_queries, dims)
        self.level_embed = nn.Embedding(self.num_transformer_feat_level, dims)
        self.cls_embed = nn.Linear(dims, num_classes + 1)
        self.mask_embed = nn.Sequential(
            nn.Linear(dims, dims), nn.ReLU(inplace=True), nn.Linear(dims, dims),
            nn.ReLU(inplace=True), nn.Linear(dims, out_channels))

        self.train_cfg, self.test_cfg = train_cfg, test_cfg
        with DefaultScope.overwrite_default_scope('mmdet'):
            from mmdet.registry import MODELS as MMDET_MODELS
            from mmdet.registry import TASK_UTILS
            if train_cfg:
                self.assigner = TASK_UTILS.build(train_cfg['assigner'])
                self.sampler = TASK_UTILS.build(train_cfg['sampler'],
                                                default_args=dict(context=self))
                self.num_points = train_cfg.get('num_points', 12544)
                self.oversample_ratio = train_cfg.get('oversample_ratio', 3.0)
                self.importance_sample_ratio = train_cfg.get('importance_sample_ratio', 0.75)
            loss_cls = dict(loss_cls)
            if loss_cls.get('class_weight') is None:
                loss_cls['class_weight'] = [1.0] * num_classes + [0.1]
            if len(loss_cls['class_weight']) != num_classes + 1:
                raise ValueError(f"loss_cls.class_weight has {len(loss_cls['class_weight'])} "
                                 f'entries; it needs num_classes + 1 = {num_classes + 1} (one '
                                 'per class, then the no-object weight, 0.1 in the paper).')
            self.class_weight = loss_cls['class_weight']
            self.loss_cls = MMDET_MODELS.build(loss_cls)
            self.loss_mask = MMDET_MODELS.build(loss_mask)
            self.loss_dice = MMDET_MODELS.build(loss_dice)

    def init_weights(self) -> None:
        for m in self.decoder_input_projs:
            if isinstance(m, Conv2d):
                caffe2_xavier_init(m, bias=0)
        self.pixel_decoder.init_weights()
        self.transformer_decoder.init_weights()

    def _forward_head(self, queries: Tensor, mask_features: Tensor,
                      attn_mask_target_size: Tuple[int, int]) -> Tuple[Tensor, Tensor, Tensor]:
        """Class logits (B, Q, K+1), mask logits (B, Q, H4, W4) and the next layer's attention
        mask: the raw mask logits resized to its level (PEM-CA hides logits < 0)."""
        x = self.transformer_decoder.post_norm(queries)
        cls_pred = self.cls_embed(x)
        mask_pred = torch.einsum('bqc,bchw->bqhw', self.mask_embed(x), mask_features)
        attn_mask = nn.functional.interpolate(mask_pred, attn_mask_target_size, mode='bilinear',
                                              align_corners=False)
        return cls_pred, mask_pred, attn_mask

    def forward(self, x: List[Tensor], batch_data_samples=None) -> Tuple[List[Tensor],
                                                                          List[Tensor]]:
        """Returns the class and mask logits of the learnable queries and of every layer."""
        mask_features, multi_scale = self.pixel_decoder(x)
        return self.forward_decoder(mask_features, multi_scale)

    def forward_decoder(self, mask_features: Tensor, multi_scale: Sequence[Tensor]
                        ) -> Tuple[List[Tensor], List[Tensor]]:
        """The transformer decoder on the pixel decoder's outputs: ``multi_scale`` holds the
        strides-32/16/8 maps (lowest resolution first), ``mask_features`` the stride-4 map."""
        memories, positions = [], []
        for i in range(self.num_transformer_feat_level):
            feat = multi_scale[i]
            memories.append(self.decoder_input_projs[i](feat)
                            + self.level_embed.weight[i].view(1, -1, 1, 1))
            zero_mask = feat.new_zeros((feat.shape[0], ) + feat.shape[-2:], dtype=torch.bool)
            positions.append(self.decoder_positional_encoding(zero_mask).to(feat.dtype))
        batch_size = mask_features.shape[0]
        queries = self.query_feat.weight.unsqueeze(0).expand(batch_size, -1, -1)
        query_pos = self.query_embed.weight.unsqueeze(0).expand(batch_size, -1, -1)

        cls_pred, mask_pred, attn_mask = self._forward_head(queries, mask_features,
                                                            multi_scale[0].shape[-2:])
        cls_preds, mask_preds = [cls_pred], [mask_pred]
        for i, layer in enumerate(self.transformer_decoder.layers):
            level = i % self.num_transformer_feat_level
            queries = layer(queries, memories[level], attn_mask, positions[level], query_pos)
            next_size = multi_scale[(i + 1) % self.num_transformer_feat_level].shape[-2:]
            cls_pred, mask_pred, attn_mask = self._forward_head(queries, mask_features, next_size)
            cls_preds.append(cls_pred)
            mask_preds.append(mask_pred)
        return cls_preds, mask_preds


@MODELS.register_module()
class PEMHead(PEMHeadMixin, MMDetMask2FormerHead):
    """PEM head for mmdet's ``Mask2Former`` detector (panoptic / instance segmentation).

    Args mirror mmdet's ``Mask2FormerHead``: ``in_channels`` (four backbone levels),
    ``feat_channels`` (transformer width, 256), ``out_channels`` (mask feature channels, 256),
    ``num_things_classes``/``num_stuff_classes``, ``num_queries`` (100), ``pixel_decoder``
    (:class:`PEMPixelDecoder` kwargs, e.g. ``feat_channels=128``), ``transformer_decoder``
    (:class:`PEMTransformerDecoder` kwargs), losses and train/test cfgs.
    """

    def __init__(self, in_channels: List[int], feat_channels: int = 256, out_channels: int = 256,
                 num_things_classes: int = 80, num_stuff_classes: int = 53,
                 num_queries: int = 100, pixel_decoder: dict = dict(),
                 enforce_decoder_input_project: bool = True,
                 transformer_decoder: dict = dict(), positional_encoding: Optional[dict] = None,
                 loss_cls: dict = _LOSS_CLS, loss_mask: dict = _LOSS_MASK,
                 loss_dice: dict = _LOSS_DICE, train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, init_cfg=None) -> None:
        BaseDenseHead.__init__(self, init_cfg=init_cfg)
        self.num_things_classes = num_things_classes
        self.num_stuff_classes = num_stuff_classes
        self._init_pem(in_channels, feat_channels, out_channels,
                       num_things_classes + num_stuff_classes, num_queries, pixel_decoder,
                       transformer_decoder, enforce_decoder_input_project, positional_encoding,
                       loss_cls, loss_mask, loss_dice, train_cfg, test_cfg)


@MODELS.register_module()
class PEMSegHead(PEMHeadMixin, MMSegMask2FormerHead):
    """PEM head for mmseg's ``EncoderDecoder`` (semantic segmentation).

    Args: ``num_classes``, ``align_corners``, ``ignore_index`` as mmseg's ``Mask2FormerHead``;
    the rest as :class:`PEMHead`.
    """

    def __init__(self, in_channels: List[int], num_classes: int, feat_channels: int = 256,
                 out_channels: int = 256, num_queries: int = 100, pixel_decoder: dict = dict(),
                 enforce_decoder_input_project: bool = True,
                 transformer_decoder: dict = dict(), positional_encoding: Optional[dict] = None,
                 loss_cls: dict = _LOSS_CLS, loss_mask: dict = _LOSS_MASK,
                 loss_dice: dict = _LOSS_DICE, train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, align_corners: bool = False,
                 ignore_index: int = 255, init_cfg=None) -> None:
        BaseDenseHead.__init__(self, init_cfg=init_cfg)
        self._init_pem(in_channels, feat_channels, out_channels, num_classes, num_queries,
                       pixel_decoder, transformer_decoder, enforce_decoder_input_project,
                       positional_encoding, loss_cls, loss_mask, loss_dice, train_cfg, test_cfg)
        self.align_corners = align_corners
        self.out_channels = num_classes
        self.ignore_index = ignore_index
