"""ViT-P point classifier ("ViT-P: The Missing Point in Vision Transformers for Universal Image
Segmentation", official code sajjad-sh33/ViT-P).

A DINOv2 ViT whose CLS token is replaced by P *point tokens*: each point (row, col) in [-1, 1]² is
embedded by a bias-free ``Linear(2 -> D)`` and gets the former CLS positional embedding. Points and
patches attend to each other without any mask; the final LayerNorm + a linear head classify every
point token. The encoder reuses mmpretrain's ``VisionTransformer`` layers, whose numerics equal
DINOv2's blocks (pre-LN, LayerScale, exact GELU, LN eps 1e-6).
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.model.weight_init import trunc_normal_
from mmengine.structures import BaseDataElement
from mmpretrain.models.backbones import VisionTransformer

from mmmask.registry import MODELS


@MODELS.register_module()
class ViTPEncoder(VisionTransformer):
    """The ViT-P token encoder: ``(image, points) -> normalised point tokens``.

    Args:
        arch: an mmpretrain ViT arch name (``'base'``/``'b'``, ``'large'``/``'l'``, ``'dinov2-s'``,
            ``'dinov2-g'``...) or a dict with embed_dims/num_layers/num_heads/feedforward_channels.
        img_size: size of the stored positional-embedding grid (DINOv2: 518 -> 37x37). Inputs of
            any size that is a multiple of ``patch_size`` are accepted; the grid is resampled.
        patch_size: 14 for DINOv2.
        drop_path_rate: stochastic depth; ``drop_path_uniform=True`` (the official setting) gives
            every block this rate instead of mmpretrain's linear ramp.
        layer_scale_init_value: LayerScale init (DINOv2: 1e-5).
        interpolate_offset: DINOv2's +0.1 added to the target grid before computing the bicubic
            scale factors (the sampling positions follow the factors, not the output size).
        interpolate_antialias: antialias flag of that interpolation (official: False).
        stem: optional CNN (a backbone config returning a tuple, last item used) whose feature
            map is tokenised instead of the pixels — the original ViT paper's "hybrid". Not part
            of ViT-P: the CPU toy configs use it because a plain ViT does not learn the toy digits
            from ~1k images in a CPU budget (README). ``patch_size`` stays the token stride in
            pixels; ``stem_out=(channels, stride)`` describes the stem's output.
        pos_embed_init: ``'trunc_normal'`` (DINOv2's init) or ``'sincos'`` (MAE's fixed 2-D
            sin-cos values, learnable afterwards) for training without a pretrained checkpoint:
            its low frequencies give every patch a linear + quadratic code of its position, which
            a point token's ``Linear(2 -> D)`` can match at once (the smooth structure a DINOv2
            checkpoint brings). Ignored when weights are loaded.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 img_size: Union[int, Tuple[int, int]] = 518,
                 patch_size: int = 14,
                 drop_path_rate: float = 0.,
                 drop_path_uniform: bool = True,
                 layer_scale_init_value: float = 1e-5,
                 interpolate_offset: float = 0.1,
                 interpolate_antialias: bool = False,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 stem: Optional[dict] = None,
                 stem_out: Optional[Tuple[int, int]] = None,
                 pos_embed_init: str = 'trunc_normal',
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 **kwargs) -> None:
        if pos_embed_init not in ('trunc_normal', 'sincos'):
            raise ValueError(f"pos_embed_init must be 'trunc_normal' or 'sincos', got "
                             f'{pos_embed_init!r}')
        self._pos_embed_init = pos_embed_init
        token_patch = patch_size
        if stem is not None:
            if stem_out is None or patch_size % stem_out[1]:
                raise ValueError('a stem needs stem_out=(channels, stride) with a stride that '
                                 f'divides patch_size={patch_size}')
            kwargs['in_channels'] = stem_out[0]
            token_patch = patch_size // stem_out[1]
            size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
            img_size = tuple(s // stem_out[1] for s in size)
        for key in ('out_type', 'with_cls_token', 'final_norm'):
            if key in kwargs:
                raise ValueError(f'ViTPEncoder fixes `{key}` (point tokens replace the CLS token '
                                 f'and are always final-normed); remove it from the config')
        if drop_path_uniform and 'layer_cfgs' not in kwargs:
            depth = (self.arch_zoo[arch.lower()]['num_layers']
                     if isinstance(arch, str) else arch['num_layers'])
            kwargs['layer_cfgs'] = [dict(drop_path_rate=drop_path_rate)] * depth
        super().__init__(
            arch=arch,
            img_size=img_size,
            patch_size=token_patch,
            drop_path_rate=drop_path_rate,
            norm_cfg=norm_cfg,
            final_norm=True,
            out_type='raw',
            with_cls_token=True,  # keeps the CLS row of pos_embed, which every point token uses
            layer_scale_init_value=layer_scale_init_value,
            interpolate_mode='bicubic',
            init_cfg=init_cfg,
            **kwargs)
        del self.cls_token  # replaced by the point tokens
        self.cls_token = None
        self.patch_size = patch_size
        self.interpolate_offset = interpolate_offset
        self.interpolate_antialias = interpolate_antialias
        self.stem = MODELS.build(stem) if stem is not None else None
        self.point_embed = nn.Linear(2, self.embed_dims, bias=False)
        grid = self.pos_embed.shape[1] - 1
        if math.isqrt(grid)**2 != grid:
            raise ValueError(f'ViTPEncoder needs a square positional-embedding grid, got {grid} '
                             f'positions from img_size={img_size}; give a square img_size')

    def init_weights(self) -> None:
        super().init_weights()
        if not (isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained'):
            # the official init normal(1e-6)s the point embedding, then its timm-style pass
            # re-initialises every Linear (this one included) with trunc_normal(0.02)
            trunc_normal_(self.point_embed.weight, std=0.02)
            if self._pos_embed_init == 'sincos':
                from mmpretrain.models.utils import build_2d_sincos_position_embedding
                side = math.isqrt(self.pos_embed.shape[1] - 1)
                with torch.no_grad():
                    self.pos_embed.copy_(build_2d_sincos_position_embedding(
                        side, self.embed_dims, cls_token=True))

    def interpolate_pos_encoding(self, num_points: int, img_hw: Tuple[int, int],
                                 dtype: torch.dtype) -> torch.Tensor:
        """Positional embedding for ``[P point tokens, patch tokens]`` of an ``img_hw`` image."""
        stored = self.pos_embed
        grid = stored.shape[1] - 1
        h, w = img_hw
        h0, w0 = h // self.patch_size, w // self.patch_size
        if num_points == 1 and h0 * w0 == grid and h == w:
            return stored.to(dtype)  # the official early return: the stored grid as is
        pos = stored.float()
        side = math.isqrt(grid)
        kwargs = (dict(scale_factor=((h0 + self.interpolate_offset) / side,
                                     (w0 + self.interpolate_offset) / side))
                  if self.interpolate_offset else dict(size=(h0, w0)))
        patch_pos = F.interpolate(
            pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2),
            mode='bicubic', antialias=self.interpolate_antialias, **kwargs)
        if patch_pos.shape[-2:] != (h0, w0):
            raise RuntimeError(f'positional grid resampled to {tuple(patch_pos.shape[-2:])}, '
                               f'expected {(h0, w0)}; lower interpolate_offset')
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, h0 * w0, -1)
        point_pos = pos[:, :1].expand(1, num_points, -1)
        return torch.cat([point_pos, patch_pos], dim=1).to(dtype)

    def forward_features(self, img: torch.Tensor, points: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Tokens after the last block (``x_prenorm``) and the final-normed point tokens."""
        if points.dim() != 3 or points.shape[-1] != 2 or points.shape[0] != img.shape[0]:
            raise ValueError(f'points must be (B, P, 2) (row, col) in [-1, 1] with B = '
                             f'{img.shape[0]}, got {tuple(points.shape)}')
        h, w = img.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f'image size {(h, w)} is not a multiple of the patch size '
                             f'{self.patch_size}; resize it (e.g. Resize(scale=(518, 518)))')
        patches, _ = self.patch_embed(img if self.stem is None else self.stem(img)[-1])
        tokens = torch.cat([self.point_embed(points.to(patches.dtype)), patches], dim=1)
        tokens = tokens + self.interpolate_pos_encoding(points.shape[1], (h, w), tokens.dtype)
        tokens = self.pre_norm(self.drop_after_pos(tokens))
        for layer in self.layers:
            tokens = layer(tokens)
        normed = self.ln1(tokens)
        return dict(x_prenorm=tokens, x_norm_point_tokens=normed[:, :points.shape[1]])

    def forward(self, img: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W), (B, P, 2) -> (B, P, D)`` final-normed point tokens."""
        return self.forward_features(img, points)['x_norm_point_tokens']


@MODELS.register_module()
class ViTPPointClassifier(BaseModel):
    """ViT-P stage 2: classify P points per image with one forward pass (cross-entropy per point).

    Data samples carry ``points`` (P, 2) and, for training, ``gt_point_labels`` (P,), as written by
    ``mmmask.SampleSegmentPoints`` + ``mmmask.PackPointInputs``. ``predict`` adds
    ``pred_point_logits`` (P, K) and ``pred_point_labels`` (P,).

    Args:
        encoder: a :class:`ViTPEncoder` config.
        num_classes: K, without any void class.
        num_points: P, the number of points classified together; fusion pads to multiples of it.
        ignore_index: point labels to skip in the loss.
    """

    def __init__(self,
                 encoder: dict,
                 num_classes: int,
                 num_points: int = 250,
                 ignore_index: int = 255,
                 loss_weight: float = 1.0,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='ImgDataPreprocessor', mean=[123.675, 116.28, 103.53],
                                     std=[58.395, 57.12, 57.375], bgr_to_rgb=True)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if num_points < 1:
            raise ValueError(f'num_points must be >= 1, got {num_points}')
        self.encoder = MODELS.build(encoder)
        self.num_classes = num_classes
        self.num_points = num_points
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight
        self.head = nn.Linear(self.encoder.embed_dims, num_classes)

    def init_weights(self) -> None:
        super().init_weights()
        if not (isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained'):
            trunc_normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)

    def point_logits(self, img: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W), (B, P, 2) -> (B, P, K)`` logits of points fed together."""
        return self.head(self.encoder(img, points))

    @staticmethod
    def _stack(data_samples: Sequence[BaseDataElement], key: str) -> torch.Tensor:
        missing = [i for i, ds in enumerate(data_samples) if key not in ds]
        if missing:
            raise KeyError(f'data samples {missing} have no `{key}`; put mmmask.SampleSegmentPoints '
                           f'and mmmask.PackPointInputs in the pipeline')
        return torch.stack([ds.get(key) for ds in data_samples])

    def forward(self, inputs: torch.Tensor, data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        if data_samples is None:
            raise ValueError('ViTPPointClassifier needs data samples carrying `points`')
        points = self._stack(data_samples, 'points').to(inputs.device)
        logits = self.point_logits(inputs, points)
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            labels = self._stack(data_samples, 'gt_point_labels').to(inputs.device).long()
            loss = F.cross_entropy(logits.reshape(-1, self.num_classes).float(), labels.reshape(-1),
                                   ignore_index=self.ignore_index)
            valid = labels != self.ignore_index
            acc = (logits.argmax(-1) == labels)[valid].float().mean() * 100 if valid.any() \
                else logits.new_zeros(())
            return dict(loss_point=loss * self.loss_weight, acc_point=acc.detach())
        if mode == 'predict':
            for ds, logit in zip(data_samples, logits):
                ds.pred_point_logits = logit
                ds.pred_point_labels = logit.argmax(-1)
            return data_samples
        raise ValueError(f'unknown mode {mode!r}; use tensor, loss or predict')
