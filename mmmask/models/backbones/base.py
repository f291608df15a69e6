"""Shared backbone behaviour: frozen stages and ``norm_eval`` (the mmcv/mmseg ResNet convention)."""
from torch import nn


class FrozenStagesMixin:
    """``train()`` that keeps the first stages frozen and, with ``self.norm_eval``, every
    BatchNorm in eval mode. The backbone defines ``_freeze_stages()`` (which modules form its
    frozen stages) and sets ``norm_eval``."""

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self
