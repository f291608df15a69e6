"""A classification head for multi-branch backbones (CrossViT): one Linear per branch, logits
averaged (CrossViT, Chen et al., ICCV 2021, Sec. 3.4: "the final prediction is the average of the
branches' classification heads")."""
from typing import Optional, Sequence, Tuple

import torch
from mmengine.registry import DefaultScope
from mmpretrain.models.heads import ClsHead
from torch import Tensor, nn

from ...registry import MODELS

__all__ = ['MultiBranchLinearClsHead']


@MODELS.register_module()
class MultiBranchLinearClsHead(ClsHead):
    """``mean_i(fc_i(feats[i]))`` over the branch features of a tuple-returning backbone.

    Args:
        num_classes: classes.
        in_channels: width of each branch feature, in the order the backbone returns them.
        init_cfg: default trunc-normal(0.02) weights and zero biases (the official CrossViT
            init of its ``head.{i}``).
        **kwargs: ``loss``, ``topk``, ``cal_acc`` of mmpretrain's ``ClsHead``.
    """

    def __init__(self, num_classes: int, in_channels: Sequence[int],
                 init_cfg: Optional[dict] = dict(type='TruncNormal', layer='Linear', std=0.02,
                                                 bias=0.),
                 **kwargs) -> None:
        # ClsHead builds its loss from mmpretrain's registry: do it in that scope whatever the
        # caller's default scope is.
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            super().__init__(init_cfg=init_cfg, **kwargs)
        if isinstance(in_channels, int):
            raise ValueError('MultiBranchLinearClsHead needs one in_channels entry per branch, '
                             f'e.g. [96, 192] for CrossViT-Ti; got {in_channels}')
        if num_classes <= 0:
            raise ValueError(f'num_classes={num_classes} must be a positive integer')
        self.num_classes = num_classes
        self.in_channels = list(in_channels)
        self.fcs = nn.ModuleList(nn.Linear(c, num_classes) for c in self.in_channels)

    def pre_logits(self, feats: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
        """The branch features (unchanged); checks that there is one per linear layer."""
        if len(feats) != len(self.fcs):
            raise ValueError(f'MultiBranchLinearClsHead has {len(self.fcs)} branches '
                             f'(in_channels={self.in_channels}) but got {len(feats)} features: '
                             'the backbone must return every branch (out_indices of all of them)')
        return tuple(feats)

    def forward(self, feats: Tuple[Tensor, ...]) -> Tensor:
        feats = self.pre_logits(feats)
        return torch.stack([fc(f) for fc, f in zip(self.fcs, feats)]).mean(dim=0)
