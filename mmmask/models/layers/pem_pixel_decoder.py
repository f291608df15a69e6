"""PEM pixel decoder (Cavagnero et al., "PEM: Prototype-based Efficient MaskFormer for Image
Segmentation", CVPR 2024, §3.3).

A light FPN-like top-down path: every backbone level is projected to ``feat_channels``, modulated by
its own global context (context-based self-modulation, CSM), refined by a modulated deformable
convolution and upsampled by a transposed convolution into the next level. It returns the stride-4
mask features and the three coarse maps (strides 32, 16, 8) the transformer decoder attends to.
Numerics follow the official code, quirks included (see ``configs/pem/README.md``).
"""
import math
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmengine.model import BaseModule
from mmengine.model.weight_init import constant_init, kaiming_init
from torch import Tensor

from mmmask.registry import MODELS
from mmmask.utils.checks import require_mmcv_ops


class ContextSelfModulation(nn.Module):
    """CSM: ``x + x * g`` with a channel gate ``g`` computed from the globally pooled ``x``.

    The official gate applies the sigmoid twice (once inside its MLP, once after), so
    ``g`` lies in (0.5, 0.731); we keep that (``double_sigmoid=True``) for checkpoint parity.
    """

    def __init__(self, channels: int, reduction: int = 2, norm_cfg: dict = dict(type='BN'),
                 double_sigmoid: bool = True) -> None:
        super().__init__()
        hidden = channels // reduction
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            build_norm_layer(norm_cfg, hidden)[1],
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 1, bias=False))
        self.double_sigmoid = double_sigmoid

    def forward(self, x: Tensor) -> Tensor:
        gate = self.mlp(x.mean(dim=(2, 3), keepdim=True)).sigmoid()
        if self.double_sigmoid:
            gate = gate.sigmoid()
        return x + x * gate


class DeformLayer(nn.Module):
    """Modulated deformable 3×3 conv → norm → ReLU, plus a ×2 transposed-conv upsampling branch.

    A plain 3×3 conv predicts 27 channels, split into the 18 DCNv2 offsets (interleaved ``(dy, dx)``
    per kernel tap, as mmcv and torchvision expect) and 9 modulation logits. Returns
    ``(x, x_up)``: the refined map (a multi-scale output) and its upsampled version.
    """

    def __init__(self, in_channels: int, out_channels: int, norm_cfg: dict = dict(type='BN')
                 ) -> None:
        super().__init__()
        require_mmcv_ops()  # ModulatedDeformConv2d is a compiled mmcv op (CPU and CUDA)
        from mmcv.ops import ModulatedDeformConv2d
        self.dcn_offset = nn.Conv2d(in_channels, 27, kernel_size=3, padding=1)
        self.dcn = ModulatedDeformConv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.dcn_norm = build_norm_layer(norm_cfg, out_channels)[1]
        self.up_sample = nn.ConvTranspose2d(out_channels, out_channels, kernel_size=4, stride=2,
                                            padding=1, bias=False)
        self.up_norm = build_norm_layer(norm_cfg, out_channels)[1]
        self.relu = nn.ReLU()

    def init_weights(self) -> None:
        """Official init: MSRA DCN weight, zero offsets (a plain conv at start), bilinear deconv."""
        kaiming_init(self.dcn, mode='fan_out', nonlinearity='relu', distribution='normal')
        constant_init(self.dcn_offset, 0)
        weight = self.up_sample.weight.data
        k = weight.shape[-1]
        factor = math.ceil(k / 2)
        center = (2 * factor - 1 - factor % 2) / (2.0 * factor)
        ramp = 1 - torch.abs(torch.arange(k, dtype=weight.dtype) / factor - center)
        # ConvTranspose2d weights are (in, out, k, k). As in the official init, the bilinear
        # kernel goes to output channel 0 from every input channel; the rest keep default init.
        weight[:, 0] = ramp[:, None] * ramp[None, :]

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        offset_y_x, offset_rest, modulation = torch.chunk(self.dcn_offset(x), 3, dim=1)
        offset = torch.cat((offset_y_x, offset_rest), dim=1)
        # As the official code: the DCN runs in its weights' dtype (fp32 under AMP), which
        # also keeps mixed precision working where the compiled op has no half/bf16 kernel.
        dtype = self.dcn.weight.dtype
        x = self.dcn(x.to(dtype), offset.to(dtype), modulation.sigmoid().to(dtype))
        x = self.relu(self.dcn_norm(x))
        x_up = self.relu(self.up_norm(self.up_sample(x)))
        return x, x_up


@MODELS.register_module()
class PEMPixelDecoder(BaseModule):
    """PEM pixel decoder: ``forward(feats) -> (mask_features, [x32, x16, x8])``.

    Args:
        in_channels: channels of the four backbone levels, strides 4, 8, 16, 32 in that order.
        feat_channels: width of the top-down path (``CONVS_DIM``, 128 in the paper).
        out_channels: channels of the stride-4 mask features (``MASK_DIM``, 256).
        norm_cfg: normalisation of every conv (the official configs use SyncBN).
        double_sigmoid: keep the official CSM quirk (see :class:`ContextSelfModulation`).
        init_cfg: mmengine init config (the official initialisation is the default).
    """

    def __init__(self, in_channels: Sequence[int], feat_channels: int = 128,
                 out_channels: int = 256, norm_cfg: dict = dict(type='SyncBN', requires_grad=True),
                 double_sigmoid: bool = True, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != 4:
            raise ValueError(f'PEMPixelDecoder takes 4 backbone levels (strides 4, 8, 16, 32); got '
                             f'in_channels={list(in_channels)}. Set the backbone out_indices to '
                             'its four stages.')
        self.in_channels = list(in_channels)
        self.feat_channels = feat_channels
        self.num_levels = 3

        def conv1x1(cin: int, cout: int) -> ConvModule:
            return ConvModule(cin, cout, 1, bias=False, norm_cfg=norm_cfg,
                              act_cfg=dict(type='ReLU'))

        self.in_projections = nn.ModuleList(conv1x1(c, feat_channels) for c in self.in_channels)
        self.conv_avg = conv1x1(self.in_channels[-1], feat_channels)
        self.csm = nn.ModuleList(
            ContextSelfModulation(feat_channels, 2, norm_cfg, double_sigmoid) for _ in range(4))
        self.dcn = nn.ModuleList(
            DeformLayer(feat_channels, feat_channels, norm_cfg) for _ in range(3))
        self.out = conv1x1(feat_channels, out_channels)

    def init_weights(self) -> None:
        if self.init_cfg is not None:
            return super().init_weights()
        for m in self.modules():
            if isinstance(m, ConvModule):
                # the official ConvBNReLU: kaiming normal with a=1
                kaiming_init(m.conv, a=1, mode='fan_in', nonlinearity='leaky_relu',
                             distribution='normal')
        for layer in self.dcn:
            layer.init_weights()

    def forward(self, feats: Sequence[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        if len(feats) != 4:
            raise ValueError(f'PEMPixelDecoder expects 4 feature maps, got {len(feats)}')
        res5 = feats[3]
        if self.training and res5.shape[0] == 1 and type(self.conv_avg.bn) is nn.BatchNorm2d:
            raise ValueError('PEM normalises the globally pooled stride-32 map (a 1×1 map): '
                             'BatchNorm cannot train on it with 1 image per batch. Use a batch '
                             'size ≥ 2, SyncBN across GPUs, or norm_cfg=dict(type="GN", ...).')
        p2, p3, p4, p5 = (proj(f) for proj, f in zip(self.in_projections, feats))
        context = self.conv_avg(res5.mean(dim=(2, 3), keepdim=True))
        x32, up = self.dcn[0](self.csm[0](p5) + context)
        x16, up = self.dcn[1](self.csm[1](p4) + _match(up, p4))
        x8, up = self.dcn[2](self.csm[2](p3) + _match(up, p3))
        x4 = self.csm[3](p2) + _match(up, p2)
        return self.out(x4), [x32, x16, x8]


def _match(up: Tensor, ref: Tensor) -> Tensor:
    """The ×2 transposed conv matches the next level whenever the input is padded to a multiple of
    32 (as the configs do); otherwise resize bilinearly instead of failing on the addition."""
    if up.shape[-2:] == ref.shape[-2:]:
        return up
    return F.interpolate(up, size=ref.shape[-2:], mode='bilinear', align_corners=False)
