"""PixPro: pixel-to-propagation consistency (Xie et al., "Propagate Yourself: Exploring Pixel-Level
Consistency for Unsupervised Visual Representation Learning", CVPR 2021, arXiv 2011.10043,
github.com/zdaxie/PixPro).

Two crops of one image go through an online branch (ResNet → 2-D MLP projector → pixel
propagation module, PPM) and a momentum key branch (EMA of ResNet + projector, own BN statistics).
Pixels of the two views whose centres, mapped back to the source image with the crop boxes, lie
closer than ``pos_ratio`` × the larger feature-bin diagonal are positives; the loss pulls each
propagated online pixel towards its positive key pixels (cosine), summed over both directions.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.models.selfsup import BaseSelfSupervisor
from torch import Tensor, nn

from mmmask.registry import MODELS
from .ema_teacher import EMATeacher

__all__ = ['MLP2dNeck', 'PixelPropagation', 'PixProHead', 'PixPro', 'pixel_centers',
           'pixel_positive_mask', 'pixel_contrast_loss', 'coords_from_data_samples']


@MODELS.register_module()
class MLP2dNeck(BaseModule):
    """PixPro's projector ``MLP2d``: 1×1 conv (bias) → BN → ReLU → 1×1 conv (bias), on
    the last backbone map (official ``Proj_Head``: 2048 → 4096 → 256).

    Args:
        in_channels / hid_channels / out_channels: conv widths.
        norm_cfg: the BN layer (``SyncBN`` in the paper configs).
    """

    def __init__(self, in_channels: int = 2048, hid_channels: int = 4096,
                 out_channels: int = 256, norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(init_cfg)
        from mmcv.cnn import build_norm_layer
        self.linear1 = nn.Conv2d(in_channels, hid_channels, 1, bias=True)
        self.bn1 = build_norm_layer(norm_cfg, hid_channels)[1]
        self.relu1 = nn.ReLU(inplace=True)
        self.linear2 = nn.Conv2d(hid_channels, out_channels, 1, bias=True)

    def forward(self, x: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        if isinstance(x, (tuple, list)):
            x = x[-1]
        if x.dim() != 4:
            raise ValueError(f'MLP2dNeck needs a [N, C, H, W] feature map, got {tuple(x.shape)}; '
                             'use a convolutional backbone')
        return self.linear2(self.relu1(self.bn1(self.linear1(x))))


class PixelPropagation(nn.Module):
    """PPM (paper Eq. 3-4, official ``featprop``): ``y_i = Σ_j s(x_i, x_j)·g(x_j)`` with
    ``s = clamp(cos, min=clamp_value)^gamma`` over all pixels of the same image and
    ``g`` = L2-normalised ``value_transform`` output.

    Args:
        channels: projector width (256).
        gamma: sharpness exponent (2); ``+1e-6`` is added to ``s`` before the power only when
            ``gamma < 1`` (as the official code).
        clamp_value: lower clamp of the cosine (0).
        transform_layers: 0 (identity), 1 (one 1×1 conv with bias, the paper) or 2 (an MLP2d of
            width ``channels``).
    """

    def __init__(self, channels: int = 256, gamma: float = 2.0, clamp_value: float = 0.0,
                 transform_layers: int = 1):
        super().__init__()
        if transform_layers == 0:
            self.value_transform = nn.Identity()
        elif transform_layers == 1:
            self.value_transform = nn.Conv2d(channels, channels, 1, bias=True)
        elif transform_layers == 2:
            self.value_transform = MLP2dNeck(channels, channels, channels)
        else:
            raise ValueError(f'transform_layers must be 0, 1 or 2, got {transform_layers}')
        self.gamma, self.clamp_value = gamma, clamp_value

    def forward(self, x: Tensor) -> Tensor:
        N, C, H, W = x.shape
        value = F.normalize(self.value_transform(x), dim=1).flatten(2)  # [N, C, HW]
        xn = F.normalize(x, dim=1).flatten(2)
        sim = torch.bmm(xn.transpose(1, 2), xn).clamp(min=self.clamp_value)  # [N, HW, HW]
        if self.gamma < 1:
            sim = sim + 1e-6
        sim = sim**self.gamma
        return torch.bmm(value, sim.transpose(1, 2)).view(N, C, H, W)


def pixel_centers(coord: Tensor, H: int, W: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Image-space centres of the ``H×W`` feature bins of crops ``coord`` ``[N, 4]`` =
    (x_ul, y_ul, x_lr, y_lr) in [0, 1]: ``(x + 0.5)·(x_lr − x_ul)/W + x_ul``. A flipped crop has
    ``x_ul > x_lr``, i.e. a negative bin width, which maps its pixels right to left.

    Returns centres x, y ``[N, H·W]`` and the bin diagonals ``[N, 1]``.
    """
    bw = (coord[:, 2] - coord[:, 0]) / W
    bh = (coord[:, 3] - coord[:, 1]) / H
    xs = torch.arange(0., float(W), dtype=coord.dtype, device=coord.device).view(1, 1, W)
    ys = torch.arange(0., float(H), dtype=coord.dtype, device=coord.device).view(1, H, 1)
    cx = (xs + 0.5) * bw.view(-1, 1, 1) + coord[:, 0].view(-1, 1, 1)
    cy = (ys + 0.5) * bh.view(-1, 1, 1) + coord[:, 1].view(-1, 1, 1)
    cx, cy = cx.expand(-1, H, W), cy.expand(-1, H, W)
    diag = torch.sqrt(bw**2 + bh**2).view(-1, 1)
    return cx.reshape(-1, H * W), cy.reshape(-1, H * W), diag


def pixel_positive_mask(coord_q: Tensor, coord_k: Tensor, H: int, W: int,
                        pos_ratio: float = 0.7) -> Tensor:
    """``[N, HW_q, HW_k]`` float mask of positive pixel pairs: centre distance divided by the
    larger bin diagonal of the two views below ``pos_ratio`` (paper Sec. 3.1, τ = 0.7)."""
    qx, qy, qd = pixel_centers(coord_q, H, W)
    kx, ky, kd = pixel_centers(coord_k, H, W)
    dist = torch.sqrt((qx.unsqueeze(2) - kx.unsqueeze(1))**2 +
                      (qy.unsqueeze(2) - ky.unsqueeze(1))**2) / torch.max(qd, kd).unsqueeze(2)
    return (dist < pos_ratio).float()


def pixel_contrast_loss(q: Tensor, k: Tensor, coord_q: Tensor, coord_k: Tensor,
                        pos_ratio: float = 0.7) -> Tensor:
    """Official ``regression_loss``: ``−2 · mean_n[Σ cos·mask / (Σ mask + 1e-6)]`` for
    L2-normalised ``q``/``k`` ``[N, C, H, W]`` (cos = plain dot product). Images without any
    positive pair contribute 0."""
    N, C, H, W = q.shape
    mask = pixel_positive_mask(coord_q, coord_k, H, W, pos_ratio).detach()
    logit = torch.bmm(q.flatten(2).transpose(1, 2), k.flatten(2))
    per_image = (logit * mask).sum((1, 2)) / (mask.sum((1, 2)) + 1e-6)
    return -2 * per_image.mean()


@MODELS.register_module()
class PixProHead(BaseModule):
    """PPM on the online projections plus the pixel-contrast loss against key projections.

    Args:
        in_channels / gamma / clamp_value / transform_layers: see :class:`PixelPropagation`.
        pos_ratio: positive threshold τ (0.7).
    """

    def __init__(self, in_channels: int = 256, gamma: float = 2.0, clamp_value: float = 0.0,
                 transform_layers: int = 1, pos_ratio: float = 0.7,
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(init_cfg)
        self.ppm = PixelPropagation(in_channels, gamma, clamp_value, transform_layers)
        self.pos_ratio = pos_ratio

    def predict_pixels(self, proj: Tensor) -> Tensor:
        """L2-normalised propagated pixels ``[N, C, H, W]`` of an online projection."""
        return F.normalize(self.ppm(proj), dim=1)

    def loss(self, pred: Tensor, target: Tensor, coord_pred: Tensor,
             coord_target: Tensor) -> Tensor:
        """One direction: ``pred`` (from :meth:`predict_pixels`) vs raw key projections
        ``target`` (normalised here)."""
        return pixel_contrast_loss(pred, F.normalize(target, dim=1), coord_pred, coord_target,
                                   self.pos_ratio)


def coords_from_data_samples(data_samples: Sequence, num_views: int = 2,
                             device=None) -> List[Tensor]:
    """Per-view crop boxes ``[N, 4]`` from ``data_sample.coord`` (a list with one box per view,
    written by ``mmmask.RandomResizedCropWithCoord`` through ``mmmask.MultiViewWithKeys(...,
    keys=['coord'])`` and ``PackInputs(algorithm_keys=['coord'])``)."""
    if data_samples is None or not all('coord' in ds for ds in data_samples):
        raise ValueError(
            'PixPro needs the crop box of every view in data_sample.coord: build each view with '
            "dict(type='mmmask.RandomResizedCropWithCoord', ...) inside dict(type="
            "'mmmask.MultiViewWithKeys', ..., keys=['coord']) and pack with dict(type="
            "'PackInputs', algorithm_keys=['coord'])")
    views = []
    for v in range(num_views):
        boxes = []
        for ds in data_samples:
            c = ds.coord
            if len(c) < num_views:
                raise ValueError(f'data_sample.coord has {len(c)} view(s), PixPro needs '
                                 f'{num_views}')
            boxes.append(torch.as_tensor(np.asarray(c[v], dtype=np.float32)))
        views.append(torch.stack(boxes).to(device))
    return views


@MODELS.register_module()
class PixPro(BaseSelfSupervisor):
    """PixPro (Xie et al., CVPR 2021) as an mmpretrain self-supervised algorithm.

    Online: ``backbone`` → ``neck`` (:class:`MLP2dNeck`) → ``head`` PPM; key: EMA copy of
    ``backbone`` + ``neck`` updated *inside* the forward, after the online pass and before the
    key pass, with τ = 1 − (1 − momentum)·(cos(πk/K) + 1)/2 (k = current iteration, K = max
    iterations; :class:`EMATeacher` ``schedule='cosine'``), parameters only — the key branch keeps
    and updates its own BN statistics (``buffers='own'``) and runs in train mode.
    Loss (official, instance branch off): ``L(pred_1, key_2) + L(pred_2, key_1)``, a sum.

    Args:
        backbone: ResNet config (``out_indices`` selects the map the loss uses, C5 in the paper).
        neck: :class:`MLP2dNeck`.
        head: :class:`PixProHead`.
        momentum: base key momentum (0.99).
    """

    def __init__(self, backbone: dict, neck: dict, head: dict, momentum: float = 0.99,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None, **kwargs):
        if data_preprocessor is None:
            data_preprocessor = dict(type='mmpretrain.SelfSupDataPreprocessor')
        super().__init__(backbone=backbone, neck=neck, head=head,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg, **kwargs)
        if not 0. <= momentum <= 1.:
            raise ValueError(f'momentum must be in [0, 1], got {momentum}')
        self.momentum = momentum
        self.teacher = EMATeacher(nn.Sequential(self.backbone, self.neck), decay=momentum,
                                  schedule='cosine', end_decay=1.0, buffers='own')

    def init_weights(self) -> None:
        super().init_weights()
        # the official key branch starts as a copy of the online one
        self.teacher.reset(nn.Sequential(self.backbone, self.neck))

    def extract_feat(self, inputs: Tensor, **kwargs):
        return self.backbone(inputs)

    def forward_train(self, img1: Tensor, img2: Tensor, coord1: Tensor,
                      coord2: Tensor) -> Dict[str, Tensor]:
        """One PixPro step on two views; returns the loss terms and intermediates (tests)."""
        proj1 = self.neck(self.backbone(img1))
        pred1 = self.head.predict_pixels(proj1)
        proj2 = self.neck(self.backbone(img2))
        pred2 = self.head.predict_pixels(proj2)
        decay = self.teacher.current_decay()
        self.teacher.update(nn.Sequential(self.backbone, self.neck), decay)
        key1 = self.teacher(img1)
        key2 = self.teacher(img2)
        if key1.shape[-2:] != pred1.shape[-2:]:
            raise ValueError('online and key maps differ in size')
        loss12 = self.head.loss(pred1, key2, coord1, coord2)
        loss21 = self.head.loss(pred2, key1, coord2, coord1)
        return dict(loss=loss12 + loss21, loss_dir_12=loss12, loss_dir_21=loss21, proj1=proj1,
                    proj2=proj2, pred1=pred1, pred2=pred2, key1=key1, key2=key2, momentum=decay)

    def loss(self, inputs: List[Tensor], data_samples=None, **kwargs) -> Dict[str, Tensor]:
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError('PixPro needs two views per image: wrap the view pipeline in '
                             "dict(type='mmmask.MultiViewWithKeys', num_views=2, keys=['coord'])")
        coord1, coord2 = coords_from_data_samples(data_samples, 2, inputs[0].device)
        res = self.forward_train(inputs[0], inputs[1], coord1, coord2)
        losses = dict(loss=res['loss'])
        losses.update(self.signals(res['pred1'], res['key2'], coord1, coord2))
        losses['momentum'] = torch.tensor(res['momentum'])
        return losses

    @torch.no_grad()
    def signals(self, pred: Tensor, key: Tensor, coord_pred: Tensor,
                coord_key: Tensor) -> Dict[str, Tensor]:
        """Method signals of one direction: ``pos_cos`` = mean cosine of positive pixel pairs
        (propagated online vs key), ``neg_cos`` = mean cosine between pixels of *different* images,
        ``pos_frac`` = fraction of positive pairs, ``pred_std`` = per-channel std of the normalised
        predictions over all pixels (→ 0 on collapse)."""
        k = F.normalize(key, dim=1)
        N, C, H, W = k.shape
        mask = pixel_positive_mask(coord_pred, coord_key, H, W, self.head.pos_ratio)
        cos = torch.bmm(pred.flatten(2).transpose(1, 2), k.flatten(2))
        out = dict(pos_cos=(cos * mask).sum() / mask.sum().clamp_min(1), pos_frac=mask.mean())
        # mean over pixel pairs of a dot product = dot product of the pixel means
        cross = pred.mean((2, 3)) @ k.mean((2, 3)).t()
        out['neg_cos'] = ((cross.sum() - cross.diagonal().sum()) / max(N * (N - 1), 1)
                          if N > 1 else cross.new_zeros(()))
        out['pred_std'] = pred.permute(0, 2, 3, 1).reshape(-1, C).std(0).mean()
        return out
