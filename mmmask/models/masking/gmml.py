"""GMML group corruption in pixel space (Atito et al., "GMML is All you Need", arXiv 2205.14986).

Official reference: ``datasets/datasets_utils.py`` of Sara-Ahmed/GMML (``GMML_drop_rand_patches``,
``GMML_replace_list``). The official code pastes one rectangle at a time per image in the data
loader; here all images of a batch draw their rectangles together, on the
normalised batch inside the objective's ``loss()`` (see :func:`group_mask`).
"""
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from mmmask.registry import MODELS
from .base import BaseMaskGenerator, MaskSample


def _rectangles(num: int, count: int, height: int, width: int, align: int, max_block: float,
                device) -> Tuple[Tensor, Tensor]:
    """``count`` rectangles per image as row/column membership ``[num, count, H]``/``[.., W]``.

    Official sampling: top-left corner ``randint(0, side - align) // align * align``; extent
    ``min(randint(align, int(max_block * side)), side - corner)`` rounded to a multiple of
    ``align`` (numpy ``randint``: exclusive upper bounds; Python ``round``: half to even).
    """
    def one_axis(side: int) -> Tensor:
        hi = int(side * max_block)
        if hi <= align:
            raise ValueError(f'GMMLCorruption: max_block_size*{side}={hi} must exceed '
                             f'drop_align={align}; lower drop_align or enlarge the image')
        if side - align <= 0:
            raise ValueError(f'GMMLCorruption: image side {side} must exceed drop_align={align}')
        start = torch.randint(0, side - align, (num, count), device=device)
        start = torch.div(start, align, rounding_mode='floor') * align
        extent = torch.randint(align, hi, (num, count), device=device)
        extent = torch.minimum(extent, side - start)
        extent = torch.round(extent.float() / align).long() * align  # torch.round: half to even
        pos = torch.arange(side, device=device)
        return (pos >= start[..., None]) & (pos < (start + extent)[..., None])

    return one_axis(height), one_axis(width)


def group_mask(num: int, height: int, width: int, target: Tensor, align: int = 1,
               max_block: float = 0.3, device=None) -> Tensor:
    """Union of random rectangles, added one by one until it covers ``target[i]`` pixels.

    Returns ``[num, H, W]`` bool, distributed as the official ``while mask.sum() < target:``
    loop. Vectorised over the batch and over 62 rectangles at a time: each row/column stores the
    rectangles containing it as bits of an int64, so a pixel's first covering rectangle is the
    lowest set bit of ``row_bits & col_bits``; a histogram of those indices gives the coverage
    after every rectangle, and the mask keeps the rectangles up to the first one that reaches the
    target.
    """
    count = 62
    bits = torch.ones(count, dtype=torch.int64, device=device) << torch.arange(
        count, device=device)
    mask = torch.zeros(num, height, width, dtype=torch.bool, device=device)
    covered = torch.zeros(num, device=device)
    todo = torch.arange(num, device=device)
    for _ in range(10000):
        if todo.numel() == 0:
            return mask
        n = todo.numel()
        rows, cols = _rectangles(n, count, height, width, align, max_block, device)
        row_bits = (rows.long() * bits[:, None]).sum(1)  # [n, H]: OR of distinct powers of 2
        col_bits = (cols.long() * bits[:, None]).sum(1)  # [n, W]
        hits = (row_bits[:, :, None] & col_bits[:, None, :]).masked_fill(mask[todo], 0)
        lowest = hits & -hits
        first = torch.where(hits == 0, torch.full_like(hits, count),
                            torch.log2(lowest.double().clamp_min(1)).long())
        new = torch.zeros(n, count + 1, device=device).scatter_add_(
            1, first.flatten(1), torch.ones(n, height * width, device=device))
        coverage = covered[todo, None] + new[:, :count].cumsum(1)
        reached = coverage >= target[todo, None]
        finished = reached.any(1)
        last = torch.where(finished, reached.to(torch.uint8).argmax(1),
                           torch.full_like(todo, count - 1))
        mask[todo] = mask[todo] | (first <= last[:, None, None])
        covered[todo] = coverage.gather(1, last[:, None])[:, 0]
        todo = todo[~finished]
    raise RuntimeError('GMMLCorruption did not reach the coverage target')


@MODELS.register_module()
class GMMLCorruption(BaseMaskGenerator):
    """GMML's pixel-space group corruption (Atito et al., 2022).

    For each image, rectangles (sides ``[align, int(max_block_size * side))`` snapped to
    ``drop_align``) are pasted until they cover at least ``U(min(0.5, p), p) * H * W`` pixels
    (``p = drop_perc``) and filled with N(0, 1) noise (``drop_type='noise'``; ``'zeros'`` fills 0).
    Then the batch replace step (``drop_replace > 0``): with probability
    ``replace_prob`` (official ``1 / (number of drop types + 1)`` = 1/2) an image's corruption is
    discarded and replaced by its clean image with rectangles covering ``U(min(.5, r), r) * H * W``
    pixels (``r = drop_replace``) copied from a random image of the batch (possibly itself).

    Signals: ``images`` ``[B, C, H, W]`` (normalised clean images). Returns a :class:`MaskSample`
    with ``mask=None``, ``pixel_mask`` ``[B, 1, H, W]`` (1 = corrupted), ``images`` (corrupted)
    and ``extras['replaced']`` ``[B]`` bool, ``extras['source']`` ``[B]`` (batch index copied from).
    """
    required_signals = ('images', )

    def __init__(self, drop_perc: float = 0.75, drop_replace: float = 0.3, drop_align: int = 1,
                 drop_type: str = 'noise', max_block_size: float = 0.3,
                 replace_prob: Optional[float] = None):
        super().__init__()
        types = drop_type.split('-')
        if not set(types) <= {'noise', 'zeros'}:
            raise ValueError(f"GMMLCorruption: drop_type must be 'noise', 'zeros' or "
                             f"'noise-zeros', got {drop_type!r}")
        if not 0 < drop_perc <= 1 or not 0 <= drop_replace <= 1:
            raise ValueError('GMMLCorruption: drop_perc must be in (0, 1], drop_replace in [0, 1]')
        self.drop_perc, self.drop_replace, self.drop_align = drop_perc, drop_replace, drop_align
        self.drop_types: Sequence[str] = types
        self.max_block_size = max_block_size
        self.replace_prob = 1 / (len(types) + 1) if replace_prob is None else replace_prob

    def _target(self, num: int, perc: float, area: int, device) -> Tensor:
        low = min(0.5, perc)
        return (torch.rand(num, device=device) * (perc - low) + low) * area

    def forward(self, batch_size: int, grid: Tuple[int, int] = None, device=None, images=None,
                **signals) -> MaskSample:
        self.check_signals(dict(images=images))
        if images.dim() != 4 or images.shape[0] != batch_size:
            raise ValueError(f'GMMLCorruption: images must be [B={batch_size}, C, H, W], got '
                             f'{tuple(images.shape)}')
        B, C, H, W = images.shape
        device = images.device
        clean = images.detach()
        mask = group_mask(B, H, W, self._target(B, self.drop_perc, H * W, device),
                          self.drop_align, self.max_block_size, device)
        fill = torch.randn_like(clean)
        if len(self.drop_types) > 1 or self.drop_types[0] == 'zeros':
            kind = torch.randint(0, len(self.drop_types), (B, ), device=device)
            zeros = torch.tensor([t == 'zeros' for t in self.drop_types], device=device)[kind]
            fill = torch.where(zeros[:, None, None, None], torch.zeros_like(fill), fill)
        corrupted = torch.where(mask[:, None], fill, clean)
        replaced = torch.zeros(B, dtype=torch.bool, device=device)
        source = torch.randint(0, B, (B, ), device=device)
        if self.drop_replace > 0:
            replaced = torch.rand(B, device=device) < self.replace_prob
            idx = replaced.nonzero().flatten()
            if idx.numel():
                rep = group_mask(idx.numel(), H, W,
                                 self._target(idx.numel(), self.drop_replace, H * W, device),
                                 self.drop_align, self.max_block_size, device)
                pasted = torch.where(rep[:, None], clean[source[idx]], clean[idx])
                corrupted = corrupted.index_copy(0, idx, pasted)
                mask = mask.index_copy(0, idx, rep)
        return MaskSample(mask=None, pixel_mask=mask[:, None].to(images.dtype),
                          images=corrupted.to(images.dtype),
                          extras=dict(replaced=replaced, source=source))
