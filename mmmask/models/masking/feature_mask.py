"""Random patch masks over feature maps (MFM's feature-space masking)."""
from typing import Optional, Sequence

import torch
from torch import Tensor


def random_patch_mask(batch: int, size: Sequence[int], mask_ratio: float, patch_size: int,
                      device=None, generator: Optional[torch.Generator] = None) -> Tensor:
    """``(B, 1, h, w)`` float mask (1 = masked) of a ``h x w`` feature map.

    The map is cut into ``ceil(h/p) x ceil(w/p)`` patches of ``p x p`` cells (the last row/column
    of patches may be cropped); exactly ``round(mask_ratio * n_patches)`` (at least 1 when
    ``mask_ratio > 0``) patches per image are masked, drawn uniformly without replacement
    (MAE-style, a random permutation per image).
    """
    h, w = int(size[0]), int(size[1])
    gh, gw = -(-h // patch_size), -(-w // patch_size)
    n = gh * gw
    k = int(round(mask_ratio * n))
    if mask_ratio > 0:
        k = max(k, 1)  # a 1x1 map (or a tiny ratio) still gets one masked patch
    noise_device = generator.device if generator is not None else device
    order = torch.rand(batch, n, generator=generator, device=noise_device).argsort(dim=1)
    grid = torch.zeros(batch, n, device=order.device)
    grid.scatter_(1, order[:, :k], 1.0)
    grid = grid.view(batch, 1, gh, gw)
    grid = grid.repeat_interleave(patch_size, 2).repeat_interleave(patch_size, 3)[..., :h, :w]
    return grid.to(device) if device is not None else grid
