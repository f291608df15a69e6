"""GMML: Group Masked Model Learning (Atito, Awais & Kittler, "GMML is All you Need",
arXiv 2205.14986; official code Sara-Ahmed/GMML).

A full-sequence ViT sees images whose groups of connected pixels were corrupted (noise,
cross-image patches; :class:`mmmask.models.masking.GMMLCorruption`, or any token generator whose
mask becomes a pixel mask filled with noise); the layer-normalised mean of several block outputs
goes through :class:`GMMLReconHead` (3×(Linear, GELU) + ConvTranspose2d) and an L1 loss on the
corrupted pixels compares the reconstruction with the clean image.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.models.utils import resize_pos_embed
from torch import Tensor, nn

from mmmask.registry import MODELS
from ..masking import MaskSample, token_to_pixel_mask

__all__ = ['GMML', 'GMMLReconHead', 'dino_resize_pos_embed']


def dino_resize_pos_embed(pos_embed: Tensor, src_shape: Tuple[int, int],
                          dst_shape: Tuple[int, int], num_extra_tokens: int = 1) -> Tensor:
    """DINO's ``interpolate_pos_encoding`` (used by GMML): bicubic with
    ``scale_factor=((h + 0.1) / h0, (w + 0.1) / w0)`` instead of a target size, which changes the
    sampling positions w.r.t. mmpretrain's ``resize_pos_embed`` (``size=(h, w)``). Returned
    unchanged when the grid is the training one."""
    if tuple(src_shape) == tuple(dst_shape):
        return pos_embed
    extra, patch = pos_embed[:, :num_extra_tokens], pos_embed[:, num_extra_tokens:]
    D = pos_embed.shape[-1]
    grid = patch.reshape(1, src_shape[0], src_shape[1], D).permute(0, 3, 1, 2)
    scale = ((dst_shape[0] + 0.1) / src_shape[0], (dst_shape[1] + 0.1) / src_shape[1])
    grid = F.interpolate(grid.float(), scale_factor=scale, mode='bicubic').to(pos_embed.dtype)
    if tuple(grid.shape[-2:]) != tuple(dst_shape):
        raise ValueError(f'DINO pos-embed interpolation gave {tuple(grid.shape[-2:])}, expected '
                         f'{tuple(dst_shape)}')
    return torch.cat([extra, grid.permute(0, 2, 3, 1).reshape(1, -1, D)], dim=1)


@MODELS.register_module()
class GMMLReconHead(BaseModule):
    """GMML's ``RECHead``: three (Linear d→d, GELU) pairs, tokens back on their grid, then
    ``ConvTranspose2d(d, in_chans, kernel=stride=patch_size)`` to pixels.

    Args:
        in_dim: token width.
        in_chans: image channels.
        patch_size: the backbone's patch size.
    """

    def __init__(self, in_dim: int, in_chans: int = 3, patch_size: int = 16,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.mlp = nn.Sequential(nn.Linear(in_dim, in_dim), nn.GELU(), nn.Linear(in_dim, in_dim),
                                 nn.GELU(), nn.Linear(in_dim, in_dim), nn.GELU())
        self.deconv = nn.ConvTranspose2d(in_dim, in_chans, kernel_size=patch_size,
                                         stride=patch_size)

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is None:  # official: trunc-normal Linears, torch default deconv
            for m in self.mlp:
                if isinstance(m, nn.Linear):
                    trunc_normal_(m.weight, std=.02)
                    nn.init.zeros_(m.bias)

    def forward(self, tokens: Tensor, grid: Tuple[int, int]) -> Tensor:
        """``tokens`` ``[B, L, D]`` (patch tokens, raster order) → image ``[B, C, H, W]``."""
        x = self.mlp(tokens)
        B, L, D = x.shape
        if grid[0] * grid[1] != L:
            raise ValueError(f'GMMLReconHead: {L} tokens do not fill the grid {tuple(grid)}')
        return self.deconv(x.transpose(1, 2).reshape(B, D, grid[0], grid[1]))


@MODELS.register_module()
class GMML(BaseSelfSupervisor):
    """Group Masked Model Learning (Atito et al., 2022).

    Args:
        backbone: a :class:`mmmask.MaskedViT` (``fixed_pos_embed=False``: learned positions).
        head: :class:`GMMLReconHead` config.
        mask_generator: ``mmmask.GMMLCorruption`` (pixel space, official) or any token
            generator (``mmmask.RandomMasking``, ``mmmask.BlockwiseMasking``, ...), whose token
            mask becomes a pixel mask (``token_to_pixel_mask``) filled with N(0, 1) noise.
        recons_layers: 0-based indices of the blocks whose raw outputs are averaged before the
            final norm (official ``recons_blocks='6-8-10-12'`` = ``(5, 7, 9, 11)``).
        drop_only: L1 over corrupted pixels only (official default); False: over all pixels.
        num_global_views: leading views reconstructed together (one mean); further views are
            local crops, a second term (official ``local_crops_number``).
        pos_interpolation: ``'dino'`` (official ``interpolate_pos_encoding``, +0.1 scale trick)
            or ``'mmpretrain'`` (``resize_pos_embed``) for inputs off the training grid.
    """

    def __init__(self, backbone: dict, head: dict,
                 mask_generator: dict = dict(type='mmmask.GMMLCorruption'),
                 recons_layers: Sequence[int] = (5, 7, 9, 11), drop_only: bool = True,
                 num_global_views: int = 2, pos_interpolation: str = 'dino',
                 data_preprocessor: Optional[dict] = None, init_cfg=None, **kwargs):
        if data_preprocessor is None:
            data_preprocessor = dict(type='mmpretrain.SelfSupDataPreprocessor')
        super().__init__(backbone=backbone, head=head, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg, **kwargs)
        self.mask_generator = MODELS.build(mask_generator)
        depth = len(self.backbone.layers)
        if not recons_layers or any(not 0 <= i < depth for i in recons_layers):
            raise ValueError(f'recons_layers {tuple(recons_layers)} must be 0-based block '
                             f'indices of the {depth}-block backbone')
        if pos_interpolation not in ('dino', 'mmpretrain'):
            raise ValueError("pos_interpolation must be 'dino' or 'mmpretrain'")
        if not getattr(self.backbone, 'final_norm', True):
            raise ValueError('GMML needs the backbone final norm (final_norm=True)')
        self.recons_layers = tuple(recons_layers)
        self.drop_only, self.num_global_views = drop_only, num_global_views
        self.pos_interpolation = pos_interpolation

    def encode(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        """LayerNorm (the backbone's final ``ln1``) of the mean of the raw outputs of
        ``recons_layers`` (cls included in the norm, dropped after). Returns patch tokens
        ``[B, L, D]`` and the grid."""
        bb = self.backbone
        tokens, grid = bb.patch_embed(x)
        if self.pos_interpolation == 'dino':
            pos = dino_resize_pos_embed(bb.pos_embed, bb.patch_resolution, grid,
                                        bb.num_extra_tokens)
        else:
            pos = resize_pos_embed(bb.pos_embed, bb.patch_resolution, grid,
                                   mode=bb.interpolate_mode, num_extra_tokens=bb.num_extra_tokens)
        h = torch.cat([bb.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1) + pos
        h = bb.pre_norm(bb.drop_after_pos(h))
        total, last = 0, max(self.recons_layers)
        for i, layer in enumerate(bb.layers[:last + 1]):
            h = layer(h)
            if i in self.recons_layers:
                total = total + h
        feats = bb.ln1(total / len(self.recons_layers))
        return feats[:, bb.num_extra_tokens:], grid

    def corrupt(self, clean: Tensor) -> MaskSample:
        """Corrupt one view ``[B, C, H, W]`` with the mask generator; returns a sample with
        ``images`` and ``pixel_mask`` ``[B, 1, H, W]`` set."""
        B, _, H, W = clean.shape
        p = self.backbone.patch_embed.projection
        stride = p.stride if isinstance(p.stride, tuple) else (p.stride, p.stride)
        grid = (H // stride[0], W // stride[1])
        sample = self.mask_generator(B, grid, clean.device, images=clean)
        if not isinstance(sample, MaskSample):
            raise ValueError(f'{type(self.mask_generator).__name__} returns '
                             f'{type(sample).__name__}; GMML needs one MaskSample per view '
                             '(use mmmask.GMMLCorruption or a token generator)')
        if sample.images is None:
            if sample.mask is None or sample.mask.shape != (B, grid[0] * grid[1]):
                raise ValueError(f'GMML: the token mask must be [B, L] = {(B, grid[0] * grid[1])}')
            if (grid[0] * stride[0], grid[1] * stride[1]) != (H, W):
                raise ValueError(f'GMML: image {H}x{W} is not a multiple of the patch size')
            pixel = token_to_pixel_mask(sample.mask, grid, (H, W)).to(clean.dtype)
            sample.pixel_mask = pixel
            sample.images = torch.where(pixel > 0, torch.randn_like(clean), clean)
        elif sample.pixel_mask is None or sample.pixel_mask.shape[-2:] != clean.shape[-2:]:
            raise ValueError('GMML: a pixel-space generator must return pixel_mask [B, 1, H, W]')
        return sample

    def reconstruction_loss(self, pred: Tensor, clean: Tensor, pixel_mask: Tensor) -> Tensor:
        """Official L1: mean of |pred − clean| over corrupted pixels (all channels), or over all
        pixels with ``drop_only=False``."""
        l1 = (pred - clean).abs()
        if not self.drop_only:
            return l1.mean()
        mask = pixel_mask.expand_as(l1)
        return (l1 * mask).sum() / mask.sum().clamp_min(1)

    def forward_views(self, corrupted: List[Tensor]) -> Tensor:
        feats, grid = self.encode(torch.cat(corrupted))
        return self.head(feats, grid)

    def loss(self, inputs: Union[Tensor, List[Tensor]], data_samples=None,
             **kwargs) -> Dict[str, Tensor]:
        views = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        samples = [self.corrupt(v) for v in views]
        groups = [(0, min(self.num_global_views, len(views)))]
        if len(views) > self.num_global_views:
            groups.append((self.num_global_views, len(views)))
        losses = {}
        for gi, (a, b) in enumerate(groups):
            pred = self.forward_views([s.images for s in samples[a:b]])
            loss = self.reconstruction_loss(pred, torch.cat(views[a:b]),
                                            torch.cat([s.pixel_mask for s in samples[a:b]]))
            losses['loss' if gi == 0 else 'loss_local'] = loss
        return losses

    def extract_feat(self, inputs: Tensor):
        return self.backbone(inputs)
