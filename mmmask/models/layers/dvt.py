"""Denoising Vision Transformers (DVT, Yang et al., ECCV 2024): building blocks.

Stage 1 (per image, offline; paper Sec. 3.2, official ``dvt/models/offline_denoiser.py`` and
``main_img_denoising.py``): the raw patch features of many random crops/flips of one image are
explained as ``F(view) = g(global coords) + s(patch position in the view) + h(F)``:

* ``g`` -- a :class:`NeuralFeatureField` over the image plane (the clean, view-independent
  semantics). The official field is a tiny-cuda-nn multi-resolution hash grid (CUDA only); here
  :class:`HashGridEncoding` is a **pure-PyTorch** re-implementation of the same encoding (runs on
  CPU and GPU, no numerical parity with tinycudann, which cannot run on CPU). A Fourier-feature
  MLP (:class:`FourierEncoding`) is offered as a lighter alternative.
* ``s`` -- the shared artifact map ``[1, C, H, W]`` (``shared_artifacts``), indexed by the patch
  position inside the view (``grid_sample``, align_corners=True).
* ``h`` -- a residual MLP ``C -> C/4 -> C/4 -> C`` on the raw feature, switched on once ``s`` is
  frozen (image-dependent artifacts such as high-norm tokens).

Stage 2 (official ``dvt/models/online_denoiser.py``, ``main_denoiser.py``): a generalisable
denoiser, :class:`DVTDenoiser` = learnable positional embedding + one (or more) ViT block(s) on a
frozen ViT's patch tokens, trained with ``MSE + (1 - cos)`` to reproduce stage-1 outputs.
"""
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import MODELS

__all__ = [
    'resample_abs_pos_embed_timm', 'DVTDenoiser', 'HashGridEncoding', 'FourierEncoding',
    'NeuralFeatureField', 'SingleImageDenoiser', 'make_patch_coordinates',
    'random_resized_crop_flip', 'fit_single_image', 'dvt_feature_loss', 'train_dvt_denoiser',
    'artifact_statistic', 'dvt_lr_at'
]


# --------------------------------------------------------------------------------------------
# Stage 2: the generalisable denoiser
# --------------------------------------------------------------------------------------------
def resample_abs_pos_embed_timm(pos_embed: Tensor, new_size: Sequence[int],
                                old_size: Optional[Sequence[int]] = None) -> Tensor:
    """timm 1.0.7 ``resample_abs_pos_embed(pe, new_size, num_prefix_tokens=0)``.

    ``pos_embed`` is ``[1, N, C]``. It is returned unchanged when ``h*w == N`` **and** ``h == w``;
    otherwise it is laid out as an ``old_size`` grid (timm's default: a square ``sqrt(N)`` grid)
    and resized with bicubic, antialiased ``F.interpolate`` (align_corners=False) to ``(h, w)``.
    With the timm default, a non-square stored grid cannot be resampled (the official code
    crashes / mis-reshapes); we raise a ``ValueError`` naming the fix instead.
    """
    h, w = int(new_size[0]), int(new_size[1])
    num_tokens, dim = pos_embed.shape[1], pos_embed.shape[2]
    if num_tokens == h * w and h == w:
        return pos_embed
    if old_size is None:
        side = int(math.sqrt(num_tokens))
        if side * side != num_tokens:
            raise ValueError(
                f'the positional embedding has {num_tokens} tokens, not a square grid; timm '
                "(and the official DVT denoiser) assume a square grid. Use pe_resample='exact' "
                'to resample from the stored (height, width)')
        old_size = (side, side)
    orig_dtype = pos_embed.dtype
    grid = pos_embed.float().reshape(1, old_size[0], old_size[1], dim).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(h, w), mode='bicubic', antialias=True, align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(1, h * w, dim).to(orig_dtype)


def _denoiser_block(feat_dim: int) -> nn.Module:
    """The official timm ``Block`` (qkv bias, no q/k norm, no LayerScale, LN eps 1e-6, GELU,
    MLP ratio 4, ``feat_dim // 64`` heads) as an mmpretrain ``TransformerEncoderLayer``: the
    computation is identical, keys map ``norm1/2 -> ln1/2``, ``mlp.fc1 -> ffn.layers.0.0``,
    ``mlp.fc2 -> ffn.layers.1``."""
    from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
    if feat_dim < 64:
        raise ValueError(
            f'DVT denoiser needs feat_dim >= 64 (feat_dim // 64 heads), got {feat_dim}')
    return TransformerEncoderLayer(
        embed_dims=feat_dim, num_heads=feat_dim // 64, feedforward_channels=4 * feat_dim,
        qkv_bias=True, act_cfg=dict(type='GELU'), norm_cfg=dict(type='LN', eps=1e-6))


@MODELS.register_module()
class DVTDenoiser(nn.Module):
    """DVT stage-2 generalisable denoiser (official ``Denoiser`` with ``vit=None``).

    ``x + resample(pos_embed)`` goes through ``num_blocks`` ViT blocks; the block output *is* the
    denoised feature map (no outer residual). Input/output are channels-last ``[B, h, w, C]``
    as in the official code; :meth:`forward_featmap` takes/returns ``[B, C, h, w]`` maps.

    Args:
        noise_map_size: ``(H0, W0)`` patch grid the positional embedding is stored for (the
            training grid: 37x37 for DINOv2 at 518 px).
        feat_dim: channels ``C`` (>= 64; ``C // 64`` heads).
        num_blocks: number of blocks (official default 1).
        enable_pe: learnable positional embedding ``[1, H0*W0, C]`` (init 0.02·N(0, 1)).
        pe_resample: ``'timm'`` reproduces timm 1.0.7 (square-grid assumption, see
            :func:`resample_abs_pos_embed_timm`); ``'exact'`` resamples from ``(H0, W0)``
            (identical for square grids, and also works for non-square ones).
    """

    def __init__(self, noise_map_size: Union[int, Sequence[int]] = 37, feat_dim: int = 768,
                 num_blocks: int = 1, enable_pe: bool = True, pe_resample: str = 'timm') -> None:
        super().__init__()
        if isinstance(noise_map_size, int):
            noise_map_size = (noise_map_size, noise_map_size)
        if pe_resample not in ('timm', 'exact'):
            raise ValueError(f"pe_resample must be 'timm' or 'exact', got {pe_resample!r}")
        self.noise_map_size = tuple(int(s) for s in noise_map_size)
        self.feat_dim = feat_dim
        self.pe_resample = pe_resample
        self.blocks = nn.ModuleList(_denoiser_block(feat_dim) for _ in range(num_blocks))
        self.pos_embed = None
        if enable_pe:
            n = self.noise_map_size[0] * self.noise_map_size[1]
            self.pos_embed = nn.Parameter(torch.randn(1, n, feat_dim) * 0.02)

    def resampled_pos_embed(self, hw: Tuple[int, int]) -> Optional[Tensor]:
        """``[1, h*w, C]`` positional embedding for an ``h x w`` grid (None without PE)."""
        if self.pos_embed is None:
            return None
        old = None if self.pe_resample == 'timm' else self.noise_map_size
        if old is not None and tuple(hw) == old:
            return self.pos_embed
        return resample_abs_pos_embed_timm(self.pos_embed, hw, old)

    def forward(self, x: Tensor, return_dict: bool = False, return_channel_first: bool = False
                ) -> Union[Tensor, Dict[str, Optional[Tensor]]]:
        """``x``: ``[B, h, w, C]`` raw patch features -> denoised ``[B, h, w, C]`` (``[B, C, h, w]``
        with ``return_channel_first``; ``{'denoised_feats', 'original_feats', 'class_tokens'}``
        with ``return_dict``, as the official)."""
        if x.dim() != 4 or x.shape[-1] != self.feat_dim:
            raise ValueError(f'DVTDenoiser expects channels-last [B, h, w, {self.feat_dim}] '
                             f'features, got {tuple(x.shape)} '
                             '(use forward_featmap for [B, C, h, w])')
        original = x.clone()
        b, h, w, c = x.shape
        tokens = x.reshape(b, h * w, c)
        pe = self.resampled_pos_embed((h, w))
        if pe is not None:
            tokens = tokens + pe
        for block in self.blocks:
            tokens = block(tokens)
        out = tokens.reshape(b, h, w, c)
        if return_channel_first:
            out = out.permute(0, 3, 1, 2)
        if return_dict:
            return dict(denoised_feats=out, original_feats=original.detach(), class_tokens=None)
        return out

    def forward_featmap(self, feat: Tensor) -> Tensor:
        """``[B, C, h, w]`` -> denoised ``[B, C, h, w]``."""
        return self.forward(feat.permute(0, 2, 3, 1), return_channel_first=True)


def dvt_feature_loss(pred: Tensor, target: Tensor) -> Dict[str, Tensor]:
    """DVT loss on channels-last features: ``MSE + (1 - mean cosine over the last axis)``."""
    l2 = F.mse_loss(pred, target)
    cos = 1 - F.cosine_similarity(pred, target, dim=-1).mean()
    return dict(loss=l2 + cos, patch_l2_loss=l2, cosine_similarity_loss=cos)


def dvt_lr_at(step: int, base_lr: float, min_lr: float, total: int, warmup: int) -> float:
    """Linear warm-up from 0 then half-cycle cosine to ``min_lr`` (official ``adjust_learning_rate``
    of stage 1 and ``CosineScheduler`` of stage 2)."""
    if step < warmup:
        return base_lr * step / max(warmup, 1)
    t = (step - warmup) / max(total - warmup, 1)
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))


def train_dvt_denoiser(denoiser: DVTDenoiser, raw: Tensor, target: Tensor, num_iters: int,
                       batch_size: int = 16, lr: Optional[float] = None, blr: float = 2e-4,
                       min_lr: float = 1e-6, weight_decay: float = 1e-5,
                       warmup_ratio: float = 0.15, seed: int = 0,
                       log: Optional[Callable[[str], None]] = None) -> List[float]:
    """Stage-2 training loop of ``main_denoiser.py`` on in-memory pairs.

    ``raw`` / ``target``: ``[N, h, w, C]`` raw ViT features and stage-1 denoised features. AdamW
    (betas 0.9/0.999), ``lr = blr * sqrt(batch_size / 256)`` unless given, warm-up over 15 % of
    the iterations then cosine to ``min_lr``; loss :func:`dvt_feature_loss`. Returns the losses.
    """
    if raw.shape != target.shape:
        raise ValueError(f'raw {tuple(raw.shape)} and target {tuple(target.shape)} differ')
    lr = blr * math.sqrt(batch_size / 256) if lr is None else lr
    opt = torch.optim.AdamW(denoiser.parameters(), lr=lr, betas=(0.9, 0.999),
                            weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    denoiser.train()
    losses = []
    warmup = int(num_iters * warmup_ratio)
    for step in range(num_iters):
        for group in opt.param_groups:
            group['lr'] = dvt_lr_at(step, lr, min_lr, num_iters, warmup)
        idx = torch.randint(0, raw.shape[0], (batch_size, ), generator=gen)
        out = dvt_feature_loss(denoiser(raw[idx].to(next(denoiser.parameters()).device)),
                               target[idx].to(next(denoiser.parameters()).device))
        opt.zero_grad()
        out['loss'].backward()
        opt.step()
        losses.append(out['loss'].item())
        if log is not None and (step % 100 == 0 or step == num_iters - 1):
            log(f'stage 2 step {step}/{num_iters - 1}: loss {losses[-1]:.4f}')
    denoiser.eval()
    return losses


# --------------------------------------------------------------------------------------------
# Stage 1: neural feature field
# --------------------------------------------------------------------------------------------
class HashGridEncoding(nn.Module):
    """Pure-PyTorch 2-D multi-resolution hash encoding (Instant-NGP), standing in for the
    official tiny-cuda-nn ``HashGrid`` (``interpolation='linear'``).

    Level ``l`` has ``scale_l = base * b**l - 1`` (``b`` so that the last level reaches
    ``max_resolution``) and ``res_l = ceil(scale_l) + 1`` vertices per side; a point ``x`` in
    ``[0, 1]^2`` sits at ``x * scale_l + 0.5``, and its 4 surrounding vertices are looked up in a
    table of ``min(2**log2_hashmap_size, res_l**2)`` entries -- directly (``i + j * res_l``) when
    the grid fits, otherwise with the spatial hash ``i XOR (j * 2654435761)`` -- and bilinearly
    interpolated. Features are initialised U(-1e-4, 1e-4) as in tiny-cuda-nn. Output:
    ``n_levels * n_features_per_level`` values per point. Not bit-identical to tinycudann (which
    runs only on CUDA, in its own memory layout); same encoding family and sizes.
    """

    def __init__(self, n_levels: int = 16, n_features_per_level: int = 8,
                 log2_hashmap_size: int = 20, base_resolution: int = 16,
                 max_resolution: int = 1024) -> None:
        super().__init__()
        self.n_levels, self.n_features = n_levels, n_features_per_level
        growth = math.exp((math.log(max_resolution) - math.log(base_resolution)) /
                          max(n_levels - 1, 1))
        limit = 2**log2_hashmap_size
        scales, resolutions, sizes, offsets = [], [], [], [0]
        for level in range(n_levels):
            scale = base_resolution * growth**level - 1.0
            res = int(math.ceil(scale)) + 1
            size = min(limit, (res * res + 7) // 8 * 8)
            scales.append(scale)
            resolutions.append(res)
            sizes.append(size)
            offsets.append(offsets[-1] + size)
        self.scales, self.resolutions, self.sizes = scales, resolutions, sizes
        self.offsets = offsets[:-1]
        self.hashed = [res * res > size for res, size in zip(resolutions, sizes)]
        self.table = nn.Parameter(torch.empty(offsets[-1], n_features_per_level).uniform_(-1e-4,
                                                                                          1e-4))

    @property
    def n_output_dims(self) -> int:
        return self.n_levels * self.n_features

    def forward(self, coords: Tensor) -> Tensor:
        """``coords``: ``[N, 2]`` (x, y) in [0, 1] -> ``[N, n_levels * n_features_per_level]``."""
        coords = coords.float()
        outs = []
        for level in range(self.n_levels):
            pos = coords * self.scales[level] + 0.5
            base = torch.floor(pos)
            frac = pos - base
            base = base.long()
            feats = 0.
            for dx in (0, 1):
                for dy in (0, 1):
                    ix, iy = base[:, 0] + dx, base[:, 1] + dy
                    if self.hashed[level]:
                        index = (ix ^ (iy * 2654435761)) & 0xFFFFFFFF
                    else:
                        index = ix + iy * self.resolutions[level]
                    index = index % self.sizes[level] + self.offsets[level]
                    wx = frac[:, 0] if dx else 1 - frac[:, 0]
                    wy = frac[:, 1] if dy else 1 - frac[:, 1]
                    feats = feats + (wx * wy)[:, None] * self.table[index]
            outs.append(feats)
        return torch.cat(outs, dim=-1)


class FourierEncoding(nn.Module):
    """Fourier features ``[x, sin(2^k pi x), cos(2^k pi x)]`` for ``k < n_frequencies`` (NeRF
    style) of 2-D coordinates in [0, 1] -- a lighter alternative to the hash grid."""

    def __init__(self, n_frequencies: int = 8) -> None:
        super().__init__()
        self.register_buffer('freqs', (2.0**torch.arange(n_frequencies)) * math.pi,
                             persistent=False)

    @property
    def n_output_dims(self) -> int:
        return 2 + 4 * self.freqs.numel()

    def forward(self, coords: Tensor) -> Tensor:
        angles = (coords.float()[:, :, None] * self.freqs).flatten(1)
        return torch.cat([coords.float(), torch.sin(angles), torch.cos(angles)], dim=-1)


class NeuralFeatureField(nn.Module):
    """``g``: 2-D coordinates in [0, 1] -> clean features (official ``NeuralFeatureField``).

    ``encoding='hashgrid'`` (official: hash grid, base res 16 -> 1024, 8 features/level, 2^20
    entries; the stage-1 script uses 16 levels) followed by ``Linear -> ReLU -> Linear`` with
    ``feat_dim // 2`` hidden units; ``encoding='fourier'`` uses :class:`FourierEncoding` and
    ``mlp_layers`` hidden layers.
    """

    def __init__(self, feat_dim: int = 768, encoding: str = 'hashgrid', n_levels: int = 16,
                 n_features_per_level: int = 8, log2_hashmap_size: int = 20,
                 base_resolution: int = 16, max_resolution: int = 1024, n_frequencies: int = 8,
                 mlp_hidden: Optional[int] = None, mlp_layers: int = 1) -> None:
        super().__init__()
        if encoding == 'hashgrid':
            self.encoding = HashGridEncoding(n_levels, n_features_per_level, log2_hashmap_size,
                                             base_resolution, max_resolution)
        elif encoding == 'fourier':
            self.encoding = FourierEncoding(n_frequencies)
        else:
            raise ValueError(f"encoding must be 'hashgrid' or 'fourier', got {encoding!r}")
        hidden = mlp_hidden or feat_dim // 2
        layers, dim = [], self.encoding.n_output_dims
        for _ in range(mlp_layers):
            layers += [nn.Linear(dim, hidden), nn.ReLU()]
            dim = hidden
        layers.append(nn.Linear(dim, feat_dim))
        self.mlp = nn.Sequential(*layers)

    def forward(self, coords: Tensor) -> Tensor:
        """``coords``: ``[..., 2]`` in [0, 1] -> ``[..., feat_dim]``."""
        if coords.numel() and (coords.min() < 0 or coords.max() > 1):
            raise ValueError('neural-field coordinates must lie in [0, 1]')
        enc = self.encoding(coords.reshape(-1, 2))
        return self.mlp(enc).reshape(*coords.shape[:-1], -1)


# --------------------------------------------------------------------------------------------
# Stage 1: per-image decomposition
# --------------------------------------------------------------------------------------------
def make_patch_coordinates(height: int, width: int, start: float = -1.,
                           end: float = 1.) -> Tensor:
    """``[height, width, 2]`` (x, y) patch-centre coordinates evenly spaced in [start, end]."""
    ys, xs = torch.linspace(start, end, height), torch.linspace(start, end, width)
    gy, gx = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([gx, gy], dim=-1)


class SingleImageDenoiser(nn.Module):
    """Stage-1 model of one image (official ``SingleImageDenoiser``): shared artifact map ``s``
    and residual predictor ``h``; the neural field ``g`` is passed to :meth:`forward`.

    Loss (paper Eq. 4-5, official): ``MSE(g + s (+ stopgrad h), F) + (1 - cos)`` and, once ``h``
    is on, ``0.1 * MSE(h, stopgrad(F - g - s)) + 0.02 * |h|_1``.
    """

    def __init__(self, noise_map_size: Union[int, Sequence[int]] = 37, feat_dim: int = 768,
                 enable_residual_predictor: bool = True, disable_pe: bool = False) -> None:
        super().__init__()
        if isinstance(noise_map_size, int):
            noise_map_size = (noise_map_size, noise_map_size)
        h, w = noise_map_size
        self.feat_dim = feat_dim
        init = torch.zeros(1, feat_dim, h, w) if disable_pe \
            else torch.randn(1, feat_dim, h, w) * .02
        self.shared_artifacts = nn.Parameter(init, requires_grad=not disable_pe)
        self.enable_residual_predictor = enable_residual_predictor
        if enable_residual_predictor:
            self.residual_predictor = nn.Sequential(
                nn.Linear(feat_dim, feat_dim // 4), nn.ReLU(),
                nn.Linear(feat_dim // 4, feat_dim // 4), nn.ReLU(),
                nn.Linear(feat_dim // 4, feat_dim))
        self.residual_predictor_start = False

    def start_residual_predictor(self) -> None:
        self.residual_predictor_start = True

    def stop_shared_artifacts_grad(self) -> None:
        self.shared_artifacts.requires_grad_(False)

    @property
    def use_residual_predictor(self) -> bool:
        return self.enable_residual_predictor and self.residual_predictor_start

    def shared_patterns(self, artifact_coords: Tensor) -> Tensor:
        """``s`` at ``[N, 2]`` view coordinates in [-1, 1] -> ``[N, C]`` (bilinear, corners)."""
        out = F.grid_sample(self.shared_artifacts, artifact_coords[None, None].to(
            self.shared_artifacts.dtype), mode='bilinear', align_corners=True)
        return out[0, :, 0].t()

    def forward(self, raw: Tensor, global_coords: Tensor, field: nn.Module,
                artifact_coords: Optional[Tensor] = None, return_visualization: bool = False
                ) -> Dict[str, Tensor]:
        """``raw``: ``[N, C]`` token samples with ``artifact_coords`` ``[N, 2]`` in [-1, 1], or a
        full view ``[H, W, C]`` (``s`` used as is); ``global_coords``: matching coordinates in
        [0, 1] of the image plane."""
        shape = None
        if raw.dim() != 2:
            shape = raw.shape
            raw = raw.reshape(-1, self.feat_dim)
            global_coords = global_coords.reshape(-1, 2)
            shared = self.shared_artifacts.permute(0, 2, 3, 1).reshape(-1, self.feat_dim)
        else:
            if artifact_coords is None:
                raise ValueError('artifact_coords are needed for [N, C] token samples')
            shared = self.shared_patterns(artifact_coords)
        denoised = field(global_coords)
        residual = self.residual_predictor(raw) if self.use_residual_predictor else None
        pred = denoised + shared + (residual.detach() if residual is not None else 0.)
        out = dvt_feature_loss(pred, raw)
        if residual is not None:
            out['residual_loss'] = 0.1 * F.mse_loss(residual, (raw - denoised - shared).detach())
            out['residual_sparsity_loss'] = 0.02 * residual.abs().mean()
            out['loss'] = out['loss'] + out['residual_loss'] + out['residual_sparsity_loss']
        if return_visualization:
            if shape is None:
                raise ValueError('return_visualization needs a full [H, W, C] view')
            view = lambda t: t.detach().reshape(*shape[:-1], -1)  # noqa: E731
            out.update(raw_vit_outputs=view(raw), pred_features=view(pred),
                       denoised_feats=view(denoised), shared_patterns=view(shared))
            clean = raw - shared
            if residual is not None:
                out['pred_residual'] = view(residual)
                clean = clean - residual
            out['denoised_features'] = view(clean)
        return out


def random_resized_crop_flip(image: Tensor, num_views: int, size: Sequence[int],
                             patch_size: int, stride: int, scale=(0.1, 0.5),
                             ratio=(3. / 4., 4. / 3.), horizontal_flip: bool = True,
                             seed: int = 0) -> Tuple[Tensor, Tensor]:
    """The official stage-1 views (``RandomResizedCropFlip``): random resized crops (bicubic,
    antialiased) of ``image`` ``[3, H, W]`` (already resized to ``size``), flipped with p=0.5.

    Returns ``views [V, 3, *size]`` and ``coords [V, h, w, 2]``: the (x, y) position in [0, 1]
    of every patch of the view in the full image (linspace over the crop box at feature
    resolution, mirrored on flipped views).
    """
    from torchvision.transforms import RandomResizedCrop
    from torchvision.transforms import functional as TF
    size = tuple(size)
    hp, wp = (size[0] - patch_size) // stride + 1, (size[1] - patch_size) // stride + 1
    rng = np.random.RandomState(seed)
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    views, coords = [], []
    try:
        height, width = image.shape[-2:]
        for _ in range(num_views):
            i, j, h, w = RandomResizedCrop.get_params(image, list(scale), list(ratio))
            view = TF.resized_crop(image, i, j, h, w, list(size),
                                   TF.InterpolationMode.BICUBIC, antialias=True)
            ni, nj, nh, nw = i / height, j / width, h / height, w / width
            gy, gx = torch.meshgrid(torch.linspace(ni, ni + nh, hp),
                                    torch.linspace(nj, nj + nw, wp), indexing='ij')
            xy = torch.stack([gx, gy], dim=-1)
            if horizontal_flip and rng.rand() < 0.5:
                view = TF.hflip(view)
                xy[..., 0] = xy[..., 0].max() - xy[..., 0] + xy[..., 0].min()
            views.append(view)
            coords.append(xy)
    finally:
        torch.random.set_rng_state(torch_state)
    return torch.stack(views), torch.stack(coords).clamp(0, 1)


def fit_single_image(raw_feats: Tensor, coords: Tensor, num_iters: int = 25000,
                     lr: float = 0.01, min_lr: float = 0.001, warmup_iters: int = 2500,
                     weight_decay: float = 1e-5, pixel_bsz: int = 2048,
                     freeze_shared_artifacts_after: float = 0.5,
                     enable_residual_predictor: bool = True, field_cfg: Optional[dict] = None,
                     seed: int = 0, device: Union[str, torch.device] = 'cpu',
                     log: Optional[Callable[[str], None]] = None) -> Dict[str, object]:
    """Stage 1 for one image (official ``denoise_an_image``).

    ``raw_feats``: ``[V, h, w, C]`` frozen-ViT features of the views (by convention the last view
    is the full image, as in ``main_img_denoising.py``); ``coords``: ``[V, h, w, 2]`` their patch
    positions in [0, 1] of the image. Every iteration samples ``pixel_bsz`` tokens over all views;
    Adam (betas 0.9/0.99, eps 1e-15), warm-up + cosine ``lr -> min_lr``; after
    ``freeze_shared_artifacts_after * num_iters`` steps ``s`` is frozen and ``h`` switched on.
    ``field_cfg``: :class:`NeuralFeatureField` kwargs (official: hash grid, 16 levels).

    Returns ``denoised`` (``g`` at every view's coordinates, ``[V, h, w, C]``; the official saves
    the last entry), ``artifacts`` (``s``, ``[h, w, C]``), ``model``, ``field`` and ``losses``.
    """
    if raw_feats.dim() != 4 or coords.shape != raw_feats.shape[:3] + (2, ):
        raise ValueError(f'raw_feats must be [V, h, w, C] and coords [V, h, w, 2], got '
                         f'{tuple(raw_feats.shape)} and {tuple(coords.shape)}')
    num_views, h, w, c = raw_feats.shape
    gen = torch.Generator().manual_seed(seed)
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = SingleImageDenoiser((h, w), c, enable_residual_predictor).to(device)
        field = NeuralFeatureField(feat_dim=c, **(field_cfg or {})).to(device)
    finally:
        torch.random.set_rng_state(torch_state)
    params = list(model.parameters()) + list(field.parameters())
    opt = torch.optim.Adam(params, lr=lr, eps=1e-15, weight_decay=weight_decay, betas=(0.9, 0.99))
    view_xy = make_patch_coordinates(h, w).to(device)[None].expand(num_views, h, w, 2)
    flat_raw = raw_feats.reshape(-1, c).to(device).float()
    flat_view_xy = view_xy.reshape(-1, 2)
    flat_xy = coords.reshape(-1, 2).to(device).float()
    losses = []
    model.train()
    field.train()
    for step in range(num_iters):
        if step > int(freeze_shared_artifacts_after * num_iters):
            model.stop_shared_artifacts_grad()
            model.start_residual_predictor()
        idx = torch.randint(0, flat_raw.shape[0], (pixel_bsz, ), generator=gen).to(device)
        for group in opt.param_groups:
            group['lr'] = dvt_lr_at(step, lr, min_lr, num_iters, warmup_iters)
        out = model(flat_raw[idx], flat_xy[idx], field, flat_view_xy[idx])
        opt.zero_grad()
        out['loss'].backward()
        opt.step()
        losses.append(out['loss'].item())
        if log is not None and (step % 1000 == 0 or step == num_iters - 1):
            log(f'stage 1 step {step}/{num_iters - 1}: loss {losses[-1]:.4f}')
    model.eval()
    field.eval()
    with torch.no_grad():
        denoised = torch.cat([field(coords[i:i + 64].to(device).float())
                              for i in range(0, num_views, 64)])
    return dict(denoised=denoised.cpu(), model=model, field=field, losses=losses,
                artifacts=model.shared_artifacts.detach()[0].permute(1, 2, 0).cpu())


# --------------------------------------------------------------------------------------------
# Measuring artifacts
# --------------------------------------------------------------------------------------------
def artifact_statistic(feats: Tensor) -> float:
    """Share of the feature variance explained by the patch position alone.

    ``feats``: ``[N, h, w, C]`` features of N different images/views. With ``m(p)`` the mean over
    the N maps at grid position ``p``, the statistic is ``sum_p |m(p) - mean_p m|^2 / sum_{n,p}
    |F_n(p) - mean|^2`` (squared norms over channels; 0: no position-only component, 1: the maps
    are the same pattern for every input). DVT's artifacts are input-independent and tied to the
    position, so they raise it.
    """
    feats = feats.double().flatten(1, 2)  # [N, P, C]
    total = ((feats - feats.mean(dim=(0, 1), keepdim=True))**2).sum(-1).mean()
    per_pos = feats.mean(0)
    positional = ((per_pos - per_pos.mean(0, keepdim=True))**2).sum(-1).mean()
    return float(positional / total.clamp_min(1e-12))
