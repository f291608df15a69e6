"""The mask-generator interface shared by every masked-modeling objective in mmmask.

A generator is an ``nn.Module`` registered in ``mmmask.registry.MODELS`` and built from the
objective's config (``mask_generator=dict(type='mmmask.RandomMasking', ratio=0.75)``). It is
called inside the objective's ``loss()`` with the batch size, the token grid and whatever signals
its strategy needs (teacher scores, attention, the images themselves) and returns a
:class:`MaskSample`. Objectives never build masks inline, so any objective runs with any
compatible generator by changing the config.
"""
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from torch import Tensor, nn


@dataclass
class MaskSample:
    """One draw of a mask generator.

    Attributes:
        mask: ``[B, L]`` bool, True = masked token (raster order over the token grid).
        ids_keep: ``[B, K]`` indices of the visible tokens, in the order an encoder that drops
            tokens should see them, or None when rows keep different counts (full-sequence
            strategies such as BEiT block-wise masking).
        ids_restore: ``[B, L]`` inverse of ``cat([ids_keep, ids_masked])`` when ``ids_keep``
            exists (MAE convention: gathering ``[visible..., masked...]`` with it restores raster
            order).
        pixel_mask: ``[B, 1, H, W]`` float 0/1 for pixel-space strategies (GMML), else None.
        images: corrupted images for pixel-space strategies, else None.
        extras: strategy-specific outputs (e.g. number of loss-guided patches for HPM).
    """
    mask: Optional[Tensor]
    ids_keep: Optional[Tensor] = None
    ids_restore: Optional[Tensor] = None
    pixel_mask: Optional[Tensor] = None
    images: Optional[Tensor] = None
    extras: Dict[str, object] = field(default_factory=dict)

    @property
    def num_keep(self) -> int:
        if self.ids_keep is None:
            raise ValueError('this mask keeps a different number of tokens per image; use a '
                             'generator with a fixed ratio (e.g. mmmask.RandomMasking) for an '
                             'objective whose encoder drops tokens')
        return self.ids_keep.shape[1]


@dataclass
class MaskPair:
    """Two independent draws and their co-masked set (CMAE)."""
    first: MaskSample
    second: MaskSample

    @property
    def co_mask(self) -> Tensor:
        """``[B, L]`` bool: tokens masked in both draws."""
        return self.first.mask & self.second.mask


def num_visible(num_tokens: int, ratio: float) -> int:
    """MAE's count of visible tokens, ``int(L * (1 - ratio))``."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f'mask ratio must be in [0, 1), got {ratio}')
    return int(num_tokens * (1 - ratio))


def sample_from_order(ids_shuffle: Tensor, num_keep: int, sort_keep: bool = False) -> MaskSample:
    """Build a :class:`MaskSample` keeping the first ``num_keep`` tokens of ``ids_shuffle``.

    ``sort_keep`` lists the visible tokens in ascending index order (a boolean gather, as HPM's
    encoder does) instead of the order they were drawn in (MAE's shuffle, MaskAlign's sampling).
    """
    B, L = ids_shuffle.shape
    ids_keep = ids_shuffle[:, :num_keep]
    ids_masked = ids_shuffle[:, num_keep:]
    if sort_keep:
        ids_keep = ids_keep.sort(dim=1).values
        ids_masked = ids_masked.sort(dim=1).values
    order = torch.cat([ids_keep, ids_masked], dim=1)
    ids_restore = torch.argsort(order, dim=1)
    mask = torch.ones(B, L, dtype=torch.bool, device=ids_shuffle.device)
    mask.scatter_(1, ids_keep, False)
    return MaskSample(mask=mask, ids_keep=ids_keep, ids_restore=ids_restore)


def sample_from_mask(mask: Tensor) -> MaskSample:
    """Wrap a boolean ``[B, L]`` mask; ``ids_keep`` (ascending) only when counts are equal."""
    counts = (~mask).sum(1)
    if bool((counts == counts[0]).all()):
        order = torch.argsort(mask.to(torch.int8), dim=1, stable=True)
        return sample_from_order(order, int(counts[0]), sort_keep=True)
    return MaskSample(mask=mask)


def token_to_pixel_mask(mask: Tensor, grid: Tuple[int, int], image_size: Tuple[int, int]) -> Tensor:
    """``[B, L]`` token mask → ``[B, 1, H, W]`` float pixel mask (nearest upsampling)."""
    B = mask.shape[0]
    m = mask.reshape(B, 1, *grid).float()
    return F.interpolate(m, size=tuple(image_size), mode='nearest')


def training_progress() -> Dict[str, int]:
    """``epoch``, ``max_epochs``, ``iter``, ``max_iters`` from mmengine's MessageHub.

    mmengine's ``RuntimeInfoHook`` publishes them during training; outside a runner (tests, a
    bare forward) the values default to the start of a 1-epoch schedule.
    """
    hub = MessageHub.get_current_instance()
    info = {}
    for key, default in (('epoch', 0), ('max_epochs', 1), ('iter', 0), ('max_iters', 1)):
        value = hub.get_info(key)
        info[key] = default if value is None else int(value)
    return info


class BaseMaskGenerator(nn.Module):
    """Base class: ``forward(batch_size, grid, device=None, **signals) -> MaskSample``.

    ``grid`` is the token grid ``(h, w)``. Subclasses list the signals they need in
    ``required_signals``; a missing one raises an error naming it and the objective that provides
    it.
    """
    required_signals: Sequence[str] = ()

    def check_signals(self, signals: dict) -> None:
        missing = [s for s in self.required_signals if signals.get(s) is None]
        if missing:
            raise ValueError(
                f'{type(self).__name__} needs the signal(s) {missing}; this objective does not '
                'provide them. Pick a generator that needs no signals (mmmask.RandomMasking, '
                'mmmask.BlockwiseMasking) or an objective that computes them (HPM gives '
                '`scores`, MaskAlign gives `importance`, GMML gives `images`).')

    def forward(self, batch_size: int, grid: Tuple[int, int], device=None, **signals) -> MaskSample:
        raise NotImplementedError
