"""The classification head of the official PPMA ImageNet models."""
from typing import Tuple

import torch
from mmengine.registry import DefaultScope
from mmpretrain.models.heads import ClsHead
from torch import Tensor, nn

from ...registry import MODELS


@MODELS.register_module()
class PPMAClsHead(ClsHead):
    """Linear projection → BatchNorm → Swish → global average pool → linear classifier.

    As in the official PPMA classifier (and RMT's): the projection acts per token on the last
    stage's (un-normalised) output, the BN over projected channels.

    Args:
        num_classes: classes.
        in_channels: channels of the last backbone stage.
        projection: width of the projection (1024 in all published variants).
    """

    def __init__(self, num_classes: int, in_channels: int, projection: int = 1024,
                 init_cfg: dict = dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
                 **kwargs) -> None:
        # ClsHead builds its loss from mmpretrain's registry: do it in that scope whatever the
        # caller's default scope is.
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            super().__init__(init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ValueError(f'num_classes={num_classes} must be positive')
        self.proj = nn.Linear(in_channels, projection)
        self.norm = nn.BatchNorm2d(projection)
        self.fc = nn.Linear(projection, num_classes)

    def pre_logits(self, feats: Tuple[Tensor]) -> Tensor:
        x = self.proj(feats[-1].permute(0, 2, 3, 1))  # (B, H, W, P)
        x = self.norm(x.permute(0, 3, 1, 2)).flatten(2)
        return (x * torch.sigmoid(x)).mean(-1)

    def forward(self, feats: Tuple[Tensor]) -> Tensor:
        return self.fc(self.pre_logits(feats))
