"""Rebuilder of Masked Feature Modeling (MFM; v2: Masked Representation Modeling, MRM).

Zhou et al., "Masked Feature Modeling Enhances Adaptive Segmentation", arXiv 2509.13801. The
paper's code is not released: what is known is that target features ``f = E(x_t)`` are masked in
feature space, a *lightweight* Rebuilder reconstructs them, and the segmentation decoder
classifies the result against the target pseudo-labels; the Rebuilder is dropped at inference.
Its architecture, the mask ratio, the patch size, the mask token and the masked levels are NOT
known: everything below is an assumption (see ``configs/mfm/README.md``).
"""
from typing import List, Optional, Sequence, Union

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmmask.models.masking import random_patch_mask
from mmmask.registry import MODELS

__all__ = ['MFMRebuilder', 'random_patch_mask']


@MODELS.register_module()
class MFMRebuilder(BaseModule):
    """Masks the chosen levels of a multi-level feature list in feature space and rebuilds them.

    For each level ``i`` in ``levels``::

        m     = random_patch_mask(...)                  # (B, 1, h, w), 1 = masked
        f_m   = (1 - m) * f + m * token_i               # token_i: learnable (C,) or zeros
        f_hat = f_m + Block_i(f_m)                      # Block_i: num_convs 3x3 convs (residual)

    Levels not in ``levels`` are passed through unchanged (the same tensor). ``Block_i`` is
    ``num_convs`` 3x3 ``ConvModule`` s with ``hidden_ratio * C`` channels (norm/act after all but
    the last, which maps back to ``C`` with no norm/act). The whole architecture is an
    ASSUMPTION (the paper only calls the Rebuilder "lightweight"); a few 3x3 convs were chosen
    because the decoders this is used with (FCN, ASPP, DAFormer) read local context of
    feature maps, and their receptive field lets masked cells be filled from visible neighbours.

    Args:
        in_channels: channels of every feature level (the length fixes the number of levels).
        levels: indices of the levels to mask and rebuild (None = all).
        mask_ratio: fraction of patches masked per image and level.
        patch_size: patch side in feature cells (int, or one per level in ``levels``).
        mask_token: ``'learned'`` (one learnable C-vector per level, zero-initialised, as
            SimMIM/MAE's mask token) or ``'zero'`` (masked cells set to 0, nothing learned).
        num_convs: 3x3 convs per level block (>= 1).
        hidden_ratio: hidden channels of the block, as a multiple of the level's channels.
        norm_cfg / act_cfg: of the hidden convs (default no norm, ReLU: BN statistics of masked
            maps would differ from those of the features the decoder sees at test time; no BN
            keeps the block's output scale close to its input's).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 levels: Optional[Sequence[int]] = None,
                 mask_ratio: float = 0.5,
                 patch_size: Union[int, Sequence[int]] = 1,
                 mask_token: str = 'learned',
                 num_convs: int = 2,
                 hidden_ratio: float = 1.0,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = [int(c) for c in in_channels]
        n_levels = len(self.in_channels)
        self.levels = list(range(n_levels)) if levels is None else [int(i) for i in levels]
        for i in self.levels:
            if not 0 <= i < n_levels:
                raise ValueError(f'level {i} out of range for {n_levels} feature levels')
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f'levels must be distinct, got {self.levels}')
        if not 0.0 <= mask_ratio <= 1.0:
            raise ValueError(f'mask_ratio must be in [0, 1], got {mask_ratio}')
        self.mask_ratio = float(mask_ratio)
        sizes = [patch_size] * len(self.levels) if isinstance(patch_size, int) \
            else [int(p) for p in patch_size]
        if len(sizes) != len(self.levels) or min(sizes) < 1:
            raise ValueError(f'patch_size must be a positive int or one per level, got '
                             f'{patch_size}')
        self.patch_size = dict(zip(self.levels, sizes))
        if mask_token not in ('learned', 'zero'):
            raise ValueError(f"mask_token must be 'learned' or 'zero', got {mask_token!r}")
        self.mask_token_mode = mask_token
        if num_convs < 1:
            raise ValueError(f'num_convs must be >= 1, got {num_convs}')
        self.tokens = nn.ParameterDict()
        self.blocks = nn.ModuleDict()
        for i in self.levels:
            c = self.in_channels[i]
            hidden = max(1, int(round(c * hidden_ratio)))
            if mask_token == 'learned':
                self.tokens[str(i)] = nn.Parameter(torch.zeros(c))
            layers = []
            for j in range(num_convs):
                last = j == num_convs - 1
                layers.append(ConvModule(
                    c if j == 0 else hidden, c if last else hidden, 3, padding=1,
                    norm_cfg=None if last else norm_cfg, act_cfg=None if last else act_cfg))
            self.blocks[str(i)] = nn.Sequential(*layers)
        self.last_masks: List[Optional[Tensor]] = []

    def token(self, level: int, like: Tensor) -> Tensor:
        """``(1, C, 1, 1)`` mask token of ``level``."""
        if self.mask_token_mode == 'learned':
            return self.tokens[str(level)].view(1, -1, 1, 1).to(like.dtype)
        return like.new_zeros(1, like.shape[1], 1, 1)

    def random_masks(self, feats: Sequence[Tensor],
                     generator: Optional[torch.Generator] = None) -> List[Optional[Tensor]]:
        """One ``(B, 1, h, w)`` mask per level (None for levels left alone)."""
        out: List[Optional[Tensor]] = [None] * len(feats)
        for i in self.levels:
            f = feats[i]
            out[i] = random_patch_mask(f.shape[0], f.shape[-2:], self.mask_ratio,
                                       self.patch_size[i], f.device, generator).to(f.dtype)
        return out

    def forward(self, feats: Sequence[Tensor],
                masks: Optional[Sequence[Optional[Tensor]]] = None) -> List[Tensor]:
        """Masked and rebuilt features, same shapes as ``feats`` (random masks unless
        ``masks`` are given; the masks used are kept in ``last_masks``)."""
        if len(feats) != len(self.in_channels):
            raise ValueError(f'expected {len(self.in_channels)} feature levels, got {len(feats)}')
        if masks is None:
            masks = self.random_masks(feats)
        out = list(feats)
        for i in self.levels:
            f, m = feats[i], masks[i]
            masked = f * (1 - m) + self.token(i, f) * m
            out[i] = masked + self.blocks[str(i)](masked)
        self.last_masks = list(masks)
        return out
