"""PolyMaX task heads: dense prediction as cluster prediction on a kMaX-DeepLab decoder.

PolyMaX (Yang et al., "PolyMaX: General Dense Prediction with Mask Transformer", WACV 2024) keeps
kMaX-DeepLab's k-means mask transformer and reads every dense task off its K clusters: each pixel
has a soft assignment ``P = softmax_K(mask logits)`` over the clusters, and

* semantic segmentation is kMaX mask classification (``Σ_k p(class | k) · P_k``),
* depth is the mixture ``Σ_k P_k · c_k`` of per-cluster depth values (the bin-centre
  formulation of DORN/AdaBins, generalised to input-adaptive clusters),
* surface normals are the re-normalised mixture ``normalize(Σ_k P_k · n_k)`` of per-cluster unit
  vectors.

Every head owns its own kMaX transformer decoder (cluster centres, six k-means layers, final
predictor) on the shared pixel decoder features, and applies its loss to the final prediction
and to each layer's prediction (deep supervision, as kMaX). No official code is released; the
parameterisation choices are listed in ``configs/polymax/README.md``.
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from mmmask.registry import MODELS

__all__ = ['PolyMaXSemanticHead', 'PolyMaXDepthHead', 'PolyMaXNormalHead', 'cluster_mixture']


def cluster_mixture(mask_logits: Tensor, values: Tensor) -> Tensor:
    """``Σ_k softmax_K(mask_logits)_k · values_k``: (B, K, H, W) x (B, K, D) -> (B, D, H, W)."""
    probs = mask_logits.float().softmax(dim=1)
    return torch.einsum('bkhw,bkd->bdhw', probs, values.float())


class _KMaXTaskHead(BaseModule):
    """Common part of the PolyMaX heads: a kMaX transformer decoder whose per-cluster readout has
    ``num_outputs`` channels, deep supervision over its layer outputs, and resizing.

    Args:
        decoder: config of ``mmmask.KMaXTransformerDecoder`` (``num_outputs``/``void_prior`` are
            set by the head).
        aux_loss_weight: weight of each per-layer (deep supervision) loss relative to the final one.
        align_corners: bilinear resizing convention.
    """

    num_outputs: int = 1
    void_prior: Optional[float] = None

    def __init__(self, decoder: dict, aux_loss_weight: float = 1.0, align_corners: bool = False,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        decoder = dict(decoder)
        decoder.setdefault('type', 'mmmask.KMaXTransformerDecoder')
        decoder.update(num_outputs=self.num_outputs, void_prior=self.void_prior,
                       align_corners=align_corners)
        self.decoder = MODELS.build(decoder)
        self.aux_loss_weight = aux_loss_weight
        self.align_corners = align_corners

    def forward(self, multi_scale: Sequence[Tensor], os4: Tensor,
                semantic_feats: Optional[Sequence[Tensor]] = None) -> Dict:
        """Run the kMaX decoder on the pixel decoder's outputs."""
        return self.decoder(multi_scale, os4)

    def _resize(self, x: Tensor, size) -> Tensor:
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        return F.interpolate(x, size=size, mode='bilinear', align_corners=self.align_corners)

    def _layer_outputs(self, outputs: Dict) -> List[Dict]:
        """Final output first, then the per-layer outputs (all at stride 4)."""
        return [outputs] + list(outputs.get('aux_outputs', []))

    def _deep_supervised_loss(self, outputs: Dict, gt: Tensor, name: str) -> Dict[str, Tensor]:
        """``loss_fn(predict(output), gt)`` on the final output (``name``) and, weighted by
        ``aux_loss_weight``, on every layer's output (``d{i}.name``), as kMaX's deep supervision."""
        size = gt.shape[-2:]
        losses = {}
        for i, out in enumerate(self._layer_outputs(outputs)):
            value = self.loss_fn(self.predict(out, size), gt.float())
            if i == 0:
                losses[name] = value
            else:
                losses[f'd{i - 1}.{name}'] = value * self.aux_loss_weight
        return losses


@MODELS.register_module()
class PolyMaXSemanticHead(_KMaXTaskHead):
    """Semantic segmentation by kMaX mask classification (one cluster per segment, N + 1 classes
    with void), trained with kMaX's losses: PQ-style class and dice terms, mask-ID cross-entropy,
    pixel instance discrimination and the auxiliary semantic head.

    Args:
        num_classes: number of semantic classes (void excluded).
        decoder: ``mmmask.KMaXTransformerDecoder`` config.
        loss: ``mmmask.KMaXCriterion`` config (``num_classes`` is filled in).
        aux_semantic_head: ``mmmask.KMaXAuxSemanticHead`` config, or None to drop it (its loss too).
        void_prior: initial void probability of every cluster (kMaX: 0.9).
        ignore_index: label of unlabelled pixels.
    """

    def __init__(self, num_classes: int, decoder: dict, loss: Optional[dict] = None,
                 aux_semantic_head: Optional[dict] = None, void_prior: float = 0.9,
                 ignore_index: int = 255, align_corners: bool = False, init_cfg=None) -> None:
        self.num_outputs = num_classes + 1
        self.void_prior = void_prior
        super().__init__(decoder, align_corners=align_corners, init_cfg=init_cfg)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        loss = dict(type='mmmask.KMaXCriterion') if loss is None else dict(loss)
        loss.update(num_classes=num_classes, ignore_index=ignore_index)
        self.criterion = MODELS.build(loss)
        self.aux_semantic_head = None
        if aux_semantic_head is not None:
            aux_semantic_head = dict(aux_semantic_head)
            aux_semantic_head.setdefault('type', 'mmmask.KMaXAuxSemanticHead')
            aux_semantic_head.setdefault('num_outputs', num_classes + 1)
            aux_semantic_head.setdefault('align_corners', align_corners)
            self.aux_semantic_head = MODELS.build(aux_semantic_head)

    def forward(self, multi_scale, os4, semantic_feats=None) -> Dict:
        outputs = self.decoder(multi_scale, os4)
        if self.training and self.aux_semantic_head is not None:
            if semantic_feats is None:
                raise ValueError('PolyMaXSemanticHead with an aux_semantic_head needs the pixel '
                                 "decoder's raw backbone features (res5, res3, res2)")
            outputs['aux_semantic_logits'] = self.aux_semantic_head(semantic_feats)
        return outputs

    def loss(self, outputs: Dict, gt_semantic: Tensor) -> Dict[str, Tensor]:
        """kMaX losses against (B, H, W) class maps at the padded input size."""
        from mmmask.models.losses import semantic_to_masks
        h, w = outputs['pred_masks'].shape[-2:]
        stride_h = max(1, round(gt_semantic.shape[-2] / h))
        stride_w = max(1, round(gt_semantic.shape[-1] / w))
        # kMaX targets are the label map strided down to stride 4 (no interpolation).
        gt_os4 = gt_semantic[:, ::stride_h, ::stride_w][:, :h, :w]
        if gt_os4.shape[-2:] != (h, w):
            gt_os4 = F.pad(gt_os4, (0, w - gt_os4.shape[-1], 0, h - gt_os4.shape[-2]),
                           value=self.ignore_index)
        masks, labels = [], []
        for sem in gt_os4:
            m, lab = semantic_to_masks(sem, self.num_classes, self.ignore_index)
            masks.append(m.to(outputs['pred_masks'].dtype))
            labels.append(lab)
        return self.criterion(outputs, masks, labels,
                              aux_semantic_logits=outputs.get('aux_semantic_logits'),
                              gt_semantic=gt_semantic)

    def predict(self, outputs: Dict, size) -> Tensor:
        """Class scores ``Σ_k softmax(class_k)[:-1] · softmax_K(mask_k)`` at ``size`` (the mask
        logits are resized before the softmax over clusters, as kMaX does)."""
        masks = self._resize(outputs['pred_masks'], size).float().softmax(dim=1)
        cls = outputs['pred_logits'].float().softmax(dim=-1)[..., :-1]
        return torch.einsum('bkn,bkhw->bnhw', cls, masks)


@MODELS.register_module()
class PolyMaXDepthHead(_KMaXTaskHead):
    """Depth as a mixture of per-cluster depth values (PolyMaX's cluster prediction for depth).

    Each cluster reads out one scalar ``z_k``. With ``value_mode='bins'`` (default) the K scalars
    are turned into normalised bin widths ``w = softmax_K(z)`` and bin centres
    ``c_k = d_min + (d_max - d_min) (Σ_{j<k} w_j + w_k / 2)`` (AdaBins' rule); with
    ``value_mode='sigmoid'`` each cluster value is ``d_min + (d_max - d_min) σ(z_k)`` independently.
    The pixel depth is ``Σ_k P_k c_k`` at stride 4, resized bilinearly to the input.

    Args:
        decoder: ``mmmask.KMaXTransformerDecoder`` config.
        loss: regression loss config called as ``loss(pred, target)`` on (B, 1, H, W) maps; target
            pixels ``<= 0`` are invalid (padding, missing depth).
        min_depth, max_depth: output range in metres.
        value_mode: ``'bins'`` or ``'sigmoid'``.
    """

    def __init__(self, decoder: dict, loss: Optional[dict] = None, min_depth: float = 1e-3,
                 max_depth: float = 10.0, value_mode: str = 'bins', aux_loss_weight: float = 1.0,
                 align_corners: bool = False, init_cfg=None) -> None:
        super().__init__(decoder, aux_loss_weight, align_corners, init_cfg)
        if value_mode not in ('bins', 'sigmoid'):
            raise ValueError(f"value_mode must be 'bins' or 'sigmoid', got {value_mode!r}")
        if not 0 <= min_depth < max_depth:
            raise ValueError(f'need 0 <= min_depth < max_depth, got {min_depth}, {max_depth}')
        self.min_depth, self.max_depth, self.value_mode = min_depth, max_depth, value_mode
        self.loss_fn = MODELS.build(loss or dict(type='mmmask.SILogRelSqrLoss'))

    def cluster_values(self, pred_logits: Tensor) -> Tensor:
        """(B, K, 1) readouts -> (B, K, 1) per-cluster depths in [min_depth, max_depth]."""
        z = pred_logits.float()
        span = self.max_depth - self.min_depth
        if self.value_mode == 'sigmoid':
            return self.min_depth + span * z.sigmoid()
        widths = z.softmax(dim=1)
        return self.min_depth + span * (widths.cumsum(dim=1) - widths / 2)

    def loss(self, outputs: Dict, gt_depth: Tensor) -> Dict[str, Tensor]:
        """Depth loss against (B, 1, H, W) metres (``<= 0`` invalid), deeply supervised."""
        return self._deep_supervised_loss(outputs, gt_depth, 'loss_depth')

    def predict(self, outputs: Dict, size) -> Tensor:
        """(B, 1, H, W) depth of one (final or per-layer) decoder output, resized to ``size``."""
        depth = cluster_mixture(outputs['pred_masks'],
                                self.cluster_values(outputs['pred_logits']))
        return self._resize(depth, size)


@MODELS.register_module()
class PolyMaXNormalHead(_KMaXTaskHead):
    """Surface normals as the re-normalised mixture of per-cluster unit normals.

    ``n_k = normalize(readout_k)`` and ``N = normalize(Σ_k P_k n_k)``; the map is re-normalised
    after every resize. Targets are (B, 3, H, W) camera-frame normals, zero where undefined.

    Args:
        decoder: ``mmmask.KMaXTransformerDecoder`` config.
        loss: loss config called as ``loss(pred, target)`` on (B, 3, H, W) maps.
    """

    num_outputs = 3

    def __init__(self, decoder: dict, loss: Optional[dict] = None, aux_loss_weight: float = 1.0,
                 eps: float = 1e-6, align_corners: bool = False, init_cfg=None) -> None:
        super().__init__(decoder, aux_loss_weight, align_corners, init_cfg)
        self.eps = eps
        self.loss_fn = MODELS.build(loss or dict(type='mmmask.NormalAngularLoss'))

    def loss(self, outputs: Dict, gt_normal: Tensor) -> Dict[str, Tensor]:
        """Normal loss against (B, 3, H, W) normals (zero vectors invalid), deeply supervised."""
        return self._deep_supervised_loss(outputs, gt_normal, 'loss_normal')

    def predict(self, outputs: Dict, size) -> Tensor:
        """(B, 3, H, W) unit normals of one decoder output, resized to ``size``."""
        values = F.normalize(outputs['pred_logits'].float(), dim=-1, eps=self.eps)
        normal = cluster_mixture(outputs['pred_masks'], values)
        normal = self._resize(F.normalize(normal, dim=1, eps=self.eps), size)
        return F.normalize(normal, dim=1, eps=self.eps)
