"""Flatten a feature map into one vector per image (linear probes that keep spatial layout)."""
from typing import Sequence, Tuple

import torch
from torch import Tensor, nn

from mmmask.registry import MODELS


@MODELS.register_module()
class FlattenNeck(nn.Module):
    """``[B, C, H, W]`` (or ``[B, N, C]``) of the last backbone output → ``[B, C·H·W]``."""

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor]:
        x = inputs[-1] if isinstance(inputs, (tuple, list)) else inputs
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)  # token order, as the probe hook's `flatten` pooling
        return (torch.flatten(x, 1), )
