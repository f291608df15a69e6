"""Decode heads of the domain-adaptive segmentation baselines (DAFormer, Hoyer et al., CVPR 2022;
DeepLabV2 as used by DACS/DAFormer/MIC) on top of mmseg 1.x's :class:`BaseDecodeHead`.

* :class:`DAFormerHead`: every selected backbone level is embedded to ``embed_dims`` channels
  (token-wise linear layer by default), upsampled to the resolution of the first (1/4) level,
  concatenated and fused by a context-aware module; DAFormer's default fusion is a
  depthwise-separable ASPP with rates (1, 6, 12, 18), no image pooling, then a 3x3 bottleneck.
* :class:`DLV2Head`: DeepLabV2's classifier — parallel dilated 3x3 convolutions that map straight
  to the class logits and are summed (no norm, no activation, no dropout).

Module names follow DAFormer's release (``embed_layers.<i>.proj``, ``fuse_layer.aspp_modules``,
``fuse_layer.bottleneck``, ``conv_seg``; ``aspp_modules.<k>.conv`` for DLV2), so its checkpoints'
decoder keys map one to one.
"""
import copy
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmseg.models.decode_heads.aspp_head import ASPPModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.decode_heads.sep_aspp_head import DepthwiseSeparableASPPModule
from mmseg.models.utils import resize
from torch import Tensor

from ...registry import MODELS


class TokenLinearEmbed(nn.Module):
    """A linear layer applied to every pixel of a feature map (SegFormer's "MLP" embedding).

    Kept as ``nn.Linear`` (``proj``) rather than a 1x1 conv so that DAFormer's weights load as is.
    Returns a feature map (N, C_out, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.proj = nn.Linear(in_channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        tokens = self.proj(x.flatten(2).transpose(1, 2))
        return tokens.transpose(1, 2).reshape(n, -1, h, w)


class ASPPFusion(nn.Module):
    """ASPP used as a fusion module: optional image pooling branch, parallel (separable) atrous
    branches, concatenation and a 3x3 ``bottleneck`` ConvModule.

    Args:
        in_channels (int): Input channels (the concatenated embeddings).
        channels (int): Channels of every branch and of the output.
        sep (bool): Depthwise-separable atrous branches (rate 1 stays a 1x1 conv).
        dilations (Sequence[int]): Atrous rates.
        pool (bool): Add a global-average-pooling branch.
        norm_cfg, act_cfg (dict | None): For every ConvModule.
        align_corners (bool): For upsampling the pooled branch.
    """

    def __init__(self,
                 in_channels: int,
                 channels: int,
                 sep: bool,
                 dilations: Sequence[int],
                 pool: bool,
                 norm_cfg: Optional[dict],
                 act_cfg: Optional[dict],
                 align_corners: bool = False,
                 context_cfg: Optional[dict] = None):
        super().__init__()
        if context_cfg is not None:
            raise NotImplementedError('ASPPFusion: the context layer of DAFormer\'s ablations '
                                      '(ISA) is not provided; use context_cfg=None.')
        assert isinstance(dilations, (list, tuple))
        self.dilations = tuple(dilations)
        self.align_corners = align_corners
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            ConvModule(in_channels, channels, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)) \
            if pool else None
        branch_cls = DepthwiseSeparableASPPModule if sep else ASPPModule
        self.aspp_modules = branch_cls(
            dilations=self.dilations,
            in_channels=in_channels,
            channels=channels,
            conv_cfg=None,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        n_branches = len(self.dilations) + int(pool)
        self.bottleneck = ConvModule(
            n_branches * channels, channels, 3, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, x: Tensor) -> Tensor:
        branches = []
        if self.image_pool is not None:
            pooled = self.image_pool(x)
            branches.append(
                resize(pooled, size=x.shape[2:], mode='bilinear',
                       align_corners=self.align_corners))
        branches += list(self.aspp_modules(x))
        return self.bottleneck(torch.cat(branches, dim=1))


def build_daformer_layer(in_channels: int, out_channels: int, type: str, **kwargs) -> nn.Module:
    """Embedding / fusion layers of DAFormer's decoder by ``type``: ``'id'``, ``'mlp'``
    (token-wise linear, other keys ignored as in DAFormer), ``'conv'`` / ``'sep_conv'``
    (ConvModule / DepthwiseSeparableConvModule with ``kernel_size`` and same padding) and
    ``'aspp'`` (:class:`ASPPFusion`)."""
    if type == 'id':
        return nn.Identity()
    if type == 'mlp':
        return TokenLinearEmbed(in_channels, out_channels)
    if type in ('conv', 'sep_conv'):
        kernel_size = kwargs.pop('kernel_size')
        module = ConvModule if type == 'conv' else DepthwiseSeparableConvModule
        return module(in_channels, out_channels, kernel_size, padding=kernel_size // 2, **kwargs)
    if type == 'aspp':
        return ASPPFusion(in_channels, out_channels, **kwargs)
    raise NotImplementedError(f'DAFormerHead: unknown layer type {type!r}')


@MODELS.register_module()
class DAFormerHead(BaseDecodeHead):
    """DAFormer's decoder (context-aware multi-level feature fusion).

    Args:
        decoder_params (dict): ``embed_dims`` (int or one per selected level), ``embed_cfg``
            (layer for every level but the last selected one), ``embed_neck_cfg`` (layer for the
            last level, or ``'same_as_embed_cfg'``) and ``fusion_cfg`` (layer over the
            concatenated embeddings, output ``channels``); each a dict with ``type`` for
            :func:`build_daformer_layer`.
        **kwargs: :class:`BaseDecodeHead` arguments; ``input_transform`` is always
            ``'multiple_select'``.
    """

    def __init__(self, decoder_params: Dict, **kwargs):
        kwargs['input_transform'] = 'multiple_select'
        super().__init__(**kwargs)
        assert not self.align_corners, 'DAFormerHead assumes align_corners=False'
        params = copy.deepcopy(decoder_params)
        embed_dims: Union[int, List[int]] = params['embed_dims']
        if isinstance(embed_dims, int):
            embed_dims = [embed_dims] * len(self.in_index)
        assert len(embed_dims) == len(self.in_index)
        embed_cfg = params['embed_cfg']
        neck_cfg = params.get('embed_neck_cfg', 'same_as_embed_cfg')
        if neck_cfg == 'same_as_embed_cfg':
            neck_cfg = embed_cfg
        fusion_cfg = params['fusion_cfg']
        for cfg in (embed_cfg, neck_cfg, fusion_cfg):
            if cfg is not None and 'aspp' in cfg['type']:
                cfg['align_corners'] = self.align_corners

        last = self.in_index[-1]
        self.embed_layers = nn.ModuleDict({
            str(i): build_daformer_layer(c, d, **copy.deepcopy(neck_cfg if i == last else
                                                              embed_cfg))
            for i, c, d in zip(self.in_index, self.in_channels, embed_dims)
        })
        self.fuse_layer = build_daformer_layer(sum(embed_dims), self.channels,
                                               **copy.deepcopy(fusion_cfg))

    def fuse_features(self, inputs: Sequence[Tensor]) -> Tensor:
        """Embedded, upsampled and fused features (before dropout and ``conv_seg``)."""
        out_size = inputs[0].shape[2:]
        embedded = []
        for i in self.in_index:
            e = self.embed_layers[str(i)](inputs[i])
            if e.shape[2:] != out_size:
                e = resize(e, size=out_size, mode='bilinear', align_corners=self.align_corners)
            embedded.append(e)
        return self.fuse_layer(torch.cat(embedded, dim=1))

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        return self.cls_seg(self.fuse_features(inputs))


@MODELS.register_module()
class DLV2Head(BaseDecodeHead):
    """DeepLabV2's ASPP classifier: ``sum_k conv3x3_{d_k}(x)`` straight to the class logits.

    Args:
        dilations (Sequence[int]): Atrous rates; (6, 12, 18, 24) is DeepLabV2, (6, 12) the
            truncated variant of earlier UDA code ("deeplabv2red").
        init_cfg: Default: normal(0, 0.01) weights and zero biases for every branch, as DAFormer's
            DeepLabV2 config.
        **kwargs: :class:`BaseDecodeHead` arguments without ``channels``, ``dropout_ratio`` and
            ``norm_cfg`` (fixed to 1 (unused), 0 and None).
    """

    def __init__(self,
                 dilations: Sequence[int] = (6, 12, 18, 24),
                 init_cfg: Optional[dict] = dict(
                     type='Normal', std=0.01, override=dict(name='aspp_modules')),
                 **kwargs):
        for key in ('channels', 'dropout_ratio', 'norm_cfg'):
            assert key not in kwargs, f'DLV2Head fixes {key}'
        super().__init__(
            channels=1, dropout_ratio=0, norm_cfg=None, init_cfg=init_cfg, **kwargs)
        del self.conv_seg
        assert isinstance(dilations, (list, tuple))
        self.dilations = tuple(dilations)
        self.aspp_modules = ASPPModule(
            self.dilations, self.in_channels, self.out_channels,
            conv_cfg=self.conv_cfg, norm_cfg=None, act_cfg=None)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        x = self._transform_inputs(inputs)
        outs = self.aspp_modules(x)
        logits = outs[0]
        for o in outs[1:]:
            logits = logits + o
        return logits
