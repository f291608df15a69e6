"""Token-level mask strategies: random (MAE), block-wise (BEiT), coarse random (SimMIM),
hard-patch (HPM), attention-guided (MaskAlign), double/co-masked (CMAE), progressive redundant."""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.datasets.transforms import BEiTMaskGenerator

from mmmask.registry import MODELS
from .base import (BaseMaskGenerator, MaskPair, MaskSample, num_visible, sample_from_mask,
                   sample_from_order, training_progress)


@MODELS.register_module()
class RandomMasking(BaseMaskGenerator):
    """MAE's per-sample random masking (He et al., 2022): argsort of U(0, 1) noise, keep the
    first ``int(L * (1 - ratio))``.

    Args:
        ratio: fraction of masked tokens.
        sort_keep: list visible tokens in ascending index order (HPM's boolean gather) instead
            of MAE's shuffled order. The set of tokens is the same.
    """

    def __init__(self, ratio: float = 0.75, sort_keep: bool = False):
        super().__init__()
        num_visible(1, ratio)  # validates the ratio
        self.ratio, self.sort_keep = ratio, sort_keep

    def forward(self, batch_size: int, grid: Tuple[int, int], device=None, **signals) -> MaskSample:
        L = grid[0] * grid[1]
        noise = torch.rand(batch_size, L, device=device)
        return sample_from_order(torch.argsort(noise, dim=1), num_visible(L, self.ratio),
                                 self.sort_keep)


@MODELS.register_module()
class BlockwiseMasking(BaseMaskGenerator):
    """BEiT's block-wise masking (Bao et al., 2022), drawn per image by mmpretrain's
    ``BEiTMaskGenerator``: rectangles of at least ``min_num_patches`` tokens with aspect ratio in
    ``[min_aspect, 1/min_aspect]`` until ``ratio * L`` tokens are masked (fewer when no rectangle
    fits; ``exact=True`` tops each row up at random so every row masks the same count and the
    sample gets ``ids_keep``).
    """

    def __init__(self, ratio: float = 0.4, min_num_patches: int = 4,
                 max_num_patches: Optional[int] = None, min_aspect: float = 0.3,
                 exact: bool = False):
        super().__init__()
        self.ratio, self.min_num_patches = ratio, min_num_patches
        self.max_num_patches, self.exact = max_num_patches, exact
        self.min_aspect = min_aspect

    def forward(self, batch_size: int, grid: Tuple[int, int], device=None, **signals) -> MaskSample:
        L = grid[0] * grid[1]
        target = int(round(self.ratio * L))
        # mmpretrain's BEiT transform draws one image's blocks; it is reused per row here
        beit = BEiTMaskGenerator(input_size=tuple(grid), num_masking_patches=target,
                                 min_num_patches=self.min_num_patches,
                                 max_num_patches=self.max_num_patches,
                                 min_aspect=self.min_aspect)
        masks = []
        for _ in range(batch_size):
            mask = torch.from_numpy(beit.transform({})['mask']).bool().flatten()
            count = int(mask.sum())
            if self.exact and count < target:
                free = (~mask).nonzero().flatten()
                mask[free[torch.randperm(len(free))[:target - count]]] = True
            masks.append(mask)
        return sample_from_mask(torch.stack(masks).to(device))


@MODELS.register_module()
class CoarseRandomMasking(BaseMaskGenerator):
    """SimMIM's masking (Xie et al., 2022): random masking of ``mask_patch_size`` cells, each
    covering ``(mask_patch_size / model_patch_size)²`` tokens; ``ceil(cells * ratio)`` cells."""

    def __init__(self, ratio: float = 0.6, mask_patch_size: int = 32, model_patch_size: int = 4):
        super().__init__()
        if mask_patch_size % model_patch_size:
            raise ValueError('mask_patch_size must be a multiple of model_patch_size')
        self.ratio, self.scale = ratio, mask_patch_size // model_patch_size

    def forward(self, batch_size: int, grid: Tuple[int, int], device=None, **signals) -> MaskSample:
        gh, gw = grid
        if gh % self.scale or gw % self.scale:
            raise ValueError(f'token grid {grid} is not divisible by the mask cell of '
                             f'{self.scale} tokens; change mask_patch_size')
        ch, cw = gh // self.scale, gw // self.scale
        count = int(math.ceil(ch * cw * self.ratio))
        order = torch.argsort(torch.rand(batch_size, ch * cw, device=device), dim=1)
        cells = torch.zeros(batch_size, ch * cw, dtype=torch.bool, device=device)
        cells.scatter_(1, order[:, :count], True)
        cells = cells.view(batch_size, ch, 1, cw, 1).expand(-1, -1, self.scale, -1, self.scale)
        return sample_from_mask(cells.reshape(batch_size, gh * gw))


@MODELS.register_module()
class HardPatchMasking(BaseMaskGenerator):
    """HPM's easy-to-hard masking (Wang et al., CVPR 2023): of the ``L - int(L(1-r))`` masked
    tokens, ``int(alpha_t * n_mask)`` are the teacher's highest predicted-loss patches and the rest
    are random among the others; ``alpha_t = alpha_max * (epoch + 1) / max_epochs`` (fully random
    while that count is 0). Visible tokens are listed in ascending order, as HPM's encoder
    gathers them with a boolean mask.

    Signals: ``scores`` ``[B, L]`` (teacher's predicted per-patch loss, raster order). ``alpha``
    may be passed to override the schedule.
    """
    required_signals = ('scores', )

    def __init__(self, ratio: float = 0.75, alpha_max: float = 0.5, sort_keep: bool = True):
        super().__init__()
        self.ratio, self.alpha_max, self.sort_keep = ratio, alpha_max, sort_keep

    def alpha(self) -> float:
        p = training_progress()
        return self.alpha_max * (p['epoch'] + 1) / max(p['max_epochs'], 1)

    def forward(self, batch_size: int, grid: Tuple[int, int], device=None, scores=None,
                alpha: Optional[float] = None, **signals) -> MaskSample:
        self.check_signals(dict(scores=scores))
        L = grid[0] * grid[1]
        if scores.shape != (batch_size, L):
            raise ValueError(f'scores must be [B, L] = {(batch_size, L)}, '
                             f'got {tuple(scores.shape)}')
        keep = num_visible(L, self.ratio)
        alpha = self.alpha() if alpha is None else alpha
        num_hard = int((L - keep) * alpha)
        device = scores.device
        if num_hard == 0:
            order = torch.argsort(torch.rand(batch_size, L, device=device), dim=1)
        else:
            by_score = torch.argsort(scores.detach(), dim=1, descending=True)
            hard, rest = by_score[:, :num_hard], by_score[:, num_hard:]
            shuffle = torch.argsort(torch.rand(rest.shape, device=device), dim=1)
            rest = torch.gather(rest, 1, shuffle)
            # visible tokens first, then the random masked ones, then the hard ones
            order = torch.cat([rest, hard], dim=1)
        sample = sample_from_order(order, keep, self.sort_keep)
        sample.extras['num_hard'] = num_hard
        sample.extras['alpha'] = alpha
        return sample


@MODELS.register_module()
class AttentionGuidedMasking(BaseMaskGenerator):
    """MaskAlign's attention masking (Xue et al., CVPR 2023): the visible set is drawn by
    multinomial sampling without replacement with probability ∝ ``importance`` (the teacher's
    cls→patch attention), so salient patches are more likely *kept*; visible tokens stay in
    sampling order.

    Signals: ``importance`` ``[B, L]`` (non-negative).
    """
    required_signals = ('importance', )

    def __init__(self, ratio: float = 0.7):
        super().__init__()
        num_visible(1, ratio)
        self.ratio = ratio

    def forward(self, batch_size: int, grid: Tuple[int, int], device=None, importance=None,
                **signals) -> MaskSample:
        self.check_signals(dict(importance=importance))
        L = grid[0] * grid[1]
        if importance.shape != (batch_size, L):
            raise ValueError(f'importance must be [B, L] = {(batch_size, L)}, '
                             f'got {tuple(importance.shape)}')
        order = torch.multinomial(importance.detach().float().clamp_min(0) + 1e-12, L,
                                  replacement=False)
        return sample_from_order(order, num_visible(L, self.ratio), sort_keep=False)


@MODELS.register_module()
class DoubleMasking(BaseMaskGenerator):
    """Two independent draws of ``generator`` and their co-masked set (CMAE, Ren et al., ACCV
    2024). Returns a :class:`MaskPair`."""

    def __init__(self, generator: dict = dict(type='mmmask.RandomMasking', ratio=0.75)):
        super().__init__()
        self.generator = MODELS.build(generator)

    def forward(self, batch_size: int, grid: Tuple[int, int], device=None, **signals) -> MaskPair:
        return MaskPair(self.generator(batch_size, grid, device, **signals),
                        self.generator(batch_size, grid, device, **signals))


@MODELS.register_module()
class ProgressiveRedundantMasking(BaseMaskGenerator):
    """Progressive redundant-token masking (Hybrid Distillation, Shi et al., ICLR 2024): mask the
    most redundant tokens, with a ratio growing linearly from ``start_ratio`` to ``end_ratio`` over
    training (by iteration).

    Redundancy, from the signals: ``importance`` ``[B, L]`` (e.g. a teacher's cls attention;
    least important = most redundant) or ``tokens`` ``[B, L, D]`` (mean cosine similarity to the
    other tokens; most similar = most redundant). No official code was found: both measures and the
    linear schedule are our reading of the abstract, not a verified reproduction.
    """

    def __init__(self, start_ratio: float = 0.0, end_ratio: float = 0.5):
        super().__init__()
        num_visible(1, start_ratio), num_visible(1, end_ratio)
        self.start_ratio, self.end_ratio = start_ratio, end_ratio

    def ratio(self) -> float:
        p = training_progress()
        t = min(p['iter'] / max(p['max_iters'], 1), 1.0)
        return self.start_ratio + (self.end_ratio - self.start_ratio) * t

    def forward(self, batch_size: int, grid: Tuple[int, int], device=None, importance=None,
                tokens=None, ratio: Optional[float] = None, **signals) -> MaskSample:
        L = grid[0] * grid[1]
        if importance is not None:
            redundancy = -importance.detach().float()
        elif tokens is not None:
            f = F.normalize(tokens.detach().float(), dim=-1)
            sim = f @ f.transpose(1, 2)
            redundancy = (sim.sum(-1) - 1) / max(L - 1, 1)
        else:
            raise ValueError('ProgressiveRedundantMasking needs `importance` [B, L] or `tokens` '
                             '[B, L, D] to rank tokens by redundancy')
        ratio = self.ratio() if ratio is None else ratio
        order = torch.argsort(redundancy, dim=1)  # least redundant first = kept
        sample = sample_from_order(order, num_visible(L, ratio), sort_keep=True)
        sample.extras['ratio'] = ratio
        return sample
