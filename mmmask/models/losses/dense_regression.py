"""Dense-regression losses for PolyMaX: depth (SILog + relative squared error), surface normals."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmmask.registry import MODELS

__all__ = ['SILogRelSqrLoss', 'NormalAngularLoss']


def _safe_sqrt(x: Tensor) -> Tensor:
    """sqrt with value 0 and a zero (not NaN) gradient where ``x <= 0``."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))),
                       torch.zeros_like(x))


def _match_size(pred: Tensor, target: Tensor) -> Tensor:
    if pred.shape[-2:] != target.shape[-2:]:
        pred = F.interpolate(pred, size=target.shape[-2:], mode='bilinear', align_corners=False)
    return pred


@MODELS.register_module()
class SILogRelSqrLoss(nn.Module):
    """Depth loss ``silog_weight * SILog + relsqr_weight * RelSqr`` (deeplab2 ``depth_loss``).

    Per image, over the valid pixels (``target > eps``, and ``target <= max_depth`` if given):

    * SILog: ``E[d^2] - (E[d])^2`` with ``d = log(target) - log(pred)`` (no square root, lambda 1);
    * RelSqr: ``sqrt(E[((target - pred) / target)^2])``.

    The per-image losses are averaged over the images that have at least one valid pixel; a batch
    without valid pixels gives 0 (still connected to ``pred``). ``pred`` is clamped at ``eps``
    inside the log. A prediction of another size is resized bilinearly to the target's size.

    Args:
        silog_weight: weight of the SILog term.
        relsqr_weight: weight of the relative squared error term.
        eps: validity threshold on the target and lower clamp of the prediction in the log.
        max_depth: optional upper validity bound on the target.
        loss_weight: overall multiplier.
        loss_name: key of the loss in the loss dict.
    """

    def __init__(self,
                 silog_weight: float = 1.0,
                 relsqr_weight: float = 1.0,
                 eps: float = 1e-6,
                 max_depth: Optional[float] = None,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_depth'):
        super().__init__()
        self.silog_weight = silog_weight
        self.relsqr_weight = relsqr_weight
        self.eps = eps
        self.max_depth = max_depth
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def per_image_terms(self, pred: Tensor, target: Tensor):
        """Return ``(silog (B,), relsqr (B,), has_valid (B,) bool)``."""
        pred = _match_size(pred.float(), target).flatten(1)
        target = target.float().flatten(1)
        valid = target > self.eps
        if self.max_depth is not None:
            valid = valid & (target <= self.max_depth)
        valid_f = valid.to(pred)
        count = valid_f.sum(1)
        denom = count.clamp(min=1.0)
        safe_target = torch.where(valid, target, torch.ones_like(target))
        diff = (torch.log(safe_target) - torch.log(pred.clamp(min=self.eps))) * valid_f
        mean_diff = diff.sum(1) / denom
        silog = (((diff - mean_diff[:, None]) * valid_f)**2).sum(1) / denom
        rel = (safe_target - pred) / safe_target * valid_f
        relsqr = _safe_sqrt((rel**2).sum(1) / denom)
        return silog, relsqr, count > 0

    def forward(self, pred: Tensor, target: Tensor, **kwargs) -> Tensor:
        """pred, target: (B, 1, H, W) depths (0 marks invalid target pixels)."""
        silog, relsqr, has_valid = self.per_image_terms(pred, target)
        per_image = self.silog_weight * silog + self.relsqr_weight * relsqr
        per_image = per_image * has_valid.to(per_image)
        loss = per_image.sum() / has_valid.sum().clamp(min=1).to(per_image)
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        return self._loss_name


@MODELS.register_module()
class NormalAngularLoss(nn.Module):
    """Surface-normal loss averaged over the valid pixels (``||target|| > valid_threshold``).

    Modes (on unit vectors ``p`` and ``g``; ``p`` is normalised unless ``normalize_pred=False``):

    * ``'angular'``: ``arccos(clamp(<p, g>, -1 + 1e-6, 1 - 1e-6))`` in radians;
    * ``'cosine'``: ``1 - <p, g>``;
    * ``'l2'``: squared Euclidean distance ``||p - g||^2``.

    The mean is over all valid pixels of the batch; no valid pixel gives 0 (connected to
    ``pred``). A prediction of another size is resized bilinearly to the target's size.
    """

    def __init__(self,
                 mode: str = 'angular',
                 valid_threshold: float = 0.5,
                 normalize_pred: bool = True,
                 eps: float = 1e-6,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_normal'):
        super().__init__()
        assert mode in ('angular', 'cosine', 'l2'), mode
        self.mode = mode
        self.valid_threshold = valid_threshold
        self.normalize_pred = normalize_pred
        self.eps = eps
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, pred: Tensor, target: Tensor, **kwargs) -> Tensor:
        """pred, target: (B, 3, H, W); zero-length target vectors mark invalid pixels."""
        pred = _match_size(pred.float(), target)
        target = target.float()
        gt_norm = target.norm(dim=1, keepdim=True)
        valid = (gt_norm > self.valid_threshold).to(pred)  # B x 1 x H x W
        gt = target / gt_norm.clamp(min=self.eps)
        if self.normalize_pred:
            pred = pred / pred.norm(dim=1, keepdim=True).clamp(min=self.eps)
        if self.mode == 'l2':
            per_pixel = ((pred - gt)**2).sum(1, keepdim=True)
        else:
            cos = (pred * gt).sum(1, keepdim=True)
            if self.mode == 'cosine':
                per_pixel = 1.0 - cos
            else:
                per_pixel = torch.acos(cos.clamp(-1.0 + 1e-6, 1.0 - 1e-6))
        loss = (per_pixel * valid).sum() / valid.sum().clamp(min=1.0)
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        return self._loss_name

