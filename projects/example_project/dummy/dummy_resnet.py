"""An example module registered in mmmask's scope from outside the package."""
import torch
from mmseg.models.backbones import ResNetV1c
from torch import nn

from mmmask.registry import MODELS


@MODELS.register_module()
class DummyResNet(ResNetV1c):
    """mmseg's ResNetV1c with one learnable gain per output stage (a stand-in for your own idea)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.gains = nn.Parameter(torch.ones(len(self.out_indices)))

    def forward(self, x):
        return tuple(g * out for g, out in zip(self.gains, super().forward(x)))
