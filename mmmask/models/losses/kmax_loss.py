"""kMaX-DeepLab training losses (mask classification with k-means cross-attention decoders).

The criterion follows the numerics of the public kMaX-DeepLab implementations (the PyTorch port by
ByteDance and deeplab2's MaX-DeepLab loss):

* Hungarian matching on the final prediction only, with cost ``-dice * p(class)``; the assignment
  and the per-slot weights derived from it are shared by every auxiliary prediction.
* PQ-style class term: soft-target cross-entropy over ``N + 1`` classes, alpha-balanced (0.75 for
  matched slots, 0.25 for slots whose target is the void class), weighted per slot by the matched
  dice (matched slots) or by the fraction of the slot's predicted mass that falls on void pixels
  (unmatched slots), both clamped at ``eos_coef``.
* PQ-style dice term: softmax over the K slots, void pixels zeroed, weighted by the matched class
  probability (clamped at ``eos_coef``; unmatched slots get 0), summed over slots and scaled by
  ``0.75 / K``.
* Mask-ID cross-entropy: per-pixel cross-entropy over the K slots against the permuted GT slot.
* Pixel instance discrimination (CMT-DeepLab): Gumbel-top-k sampled pixels, contrastive soft-target
  cross-entropy between feature similarities and GT same-mask relations.
* Auxiliary semantic cross-entropy on the semantic head, with the same pixel sampling.

All "mean over non-zero" reductions are per image and then averaged over the batch.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from mmmask.registry import MODELS

__all__ = ['kmax_hungarian_match', 'KMaXCriterion', 'semantic_to_masks']

# Logit offset that keeps void pixels out of the Gumbel-top-k draws.
_VOID_LOGIT = -99999.0
# Denominator guard of the matching dice and of the void ratio.
_SIM_EPS = 1e-5


# ----------------------------------------------------------------------------------------------
# Matching
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def _match_similarities(pred_logits: Tensor, pred_masks: Tensor, gt_labels: Tensor,
                        gt_masks: Tensor) -> Tuple[Tensor, Tensor]:
    """Dice similarity (K, G) and class probability (K, G) used by the matching cost.

    The mask probabilities are a softmax over the K slots; pixels covered by no GT mask are
    removed before the overlap is measured. Dice is ``<p, g> / ((|p| + |g|) / 2 + 1e-5)``.
    """
    logits = pred_logits.detach().float()
    prob_cls = logits.softmax(-1)[:, :-1]  # drop the void column
    cls_sim = prob_cls[:, gt_labels.long()]  # K x G

    num_slots = pred_masks.shape[0]
    prob_mask = pred_masks.detach().float().softmax(0).reshape(num_slots, -1)  # K x L
    gt = gt_masks.detach().float().reshape(gt_masks.shape[0], prob_mask.shape[1])  # G x L
    labelled = (gt.sum(0, keepdim=True) > 0).to(prob_mask)  # 1 x L
    prob_mask = prob_mask * labelled
    overlap = prob_mask @ gt.t()  # K x G
    half_size = (prob_mask.sum(-1)[:, None] + gt.sum(-1)[None, :]) * 0.5
    dice = overlap / (half_size + _SIM_EPS)
    return dice, cls_sim


@torch.no_grad()
def _solve_assignment(dice: Tensor, cls_sim: Tensor) -> Tuple[Tensor, Tensor]:
    device = dice.device
    if dice.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty.clone()
    cost = torch.nan_to_num(-dice * cls_sim, nan=0.0, posinf=0.0, neginf=0.0)
    rows, cols = linear_sum_assignment(cost.cpu().double().numpy())
    return (torch.as_tensor(np.asarray(rows), dtype=torch.long, device=device),
            torch.as_tensor(np.asarray(cols), dtype=torch.long, device=device))


@torch.no_grad()
def kmax_hungarian_match(pred_logits: Tensor, pred_masks: Tensor, gt_labels: Tensor,
                         gt_masks: Tensor) -> Tuple[Tensor, Tensor]:
    """Bipartite matching of one image's mask slots to its GT masks.

    Args:
        pred_logits: (K, N+1) class logits; the last column is the void class.
        pred_masks: (K, H, W) mask logits (softmax is taken over K).
        gt_labels: (G,) class indices in [0, N).
        gt_masks: (G, H, W) binary masks at the prediction resolution.

    Returns:
        ``(pred_idx, gt_idx)``: matched slot and GT indices (long, ``min(K, G)`` each), minimising
        ``-dice * p_class`` with :func:`scipy.optimize.linear_sum_assignment`.
    """
    dice, cls_sim = _match_similarities(pred_logits, pred_masks, gt_labels, gt_masks)
    return _solve_assignment(dice, cls_sim)


def semantic_to_masks(sem: Tensor, num_classes: int,
                      ignore_index: int = 255) -> Tuple[Tensor, Tensor]:
    """Turn an (H, W) class map into one binary mask per class present (kMaX semantic targets).

    Pixels equal to ``ignore_index`` or outside ``[0, num_classes)`` belong to no mask (void).

    Returns:
        ``(masks, labels)``: float masks (G, H, W) and long labels (G,), sorted by class id.
    """
    sem = sem.long()
    valid = (sem >= 0) & (sem < num_classes) & (sem != ignore_index)
    labels = torch.unique(sem[valid])
    if labels.numel() == 0:
        return sem.new_zeros((0, ) + tuple(sem.shape), dtype=torch.float32), labels
    masks = (sem[None] == labels[:, None, None]).float()
    return masks, labels


# ----------------------------------------------------------------------------------------------
# Loss terms (batched, fp32)
# ----------------------------------------------------------------------------------------------
def _nonzero_mean(loss: Tensor) -> Tensor:
    """(B, M) -> scalar: per-image sum over the non-zero entries' count (>= 1), batch mean."""
    loss = loss.flatten(1)
    count = (loss != 0).to(loss).sum(-1).clamp(min=1.0)
    return torch.nan_to_num(loss.sum(-1) / count, nan=0.0, posinf=0.0, neginf=0.0).mean()


def _gumbel_topk(logits: Tensor, k: int) -> Tensor:
    """Draw ``k`` indices per row without replacement from ``softmax(logits)`` (Gumbel-top-k)."""
    u = torch.rand(logits.shape, dtype=logits.dtype, device=logits.device)
    u = u.clamp(min=torch.finfo(u.dtype).tiny)
    gumbel = -torch.log(-torch.log(u))
    return torch.topk(logits + gumbel, k, dim=-1).indices


def _sampling_logits(inverse_area: Tensor, void: Tensor, temperature: float) -> Tensor:
    """(B, L) log-inverse-area logits scaled by ``temperature``; void pixels pushed far down."""
    return torch.log(inverse_area) * temperature + void.to(inverse_area) * _VOID_LOGIT


def pq_class_loss(logits: Tensor, target_classes: Tensor, weight: Tensor, void_index: int,
                  alpha: float = 0.75) -> Tensor:
    """PQ-style classification term. logits (B, K, N+1), target_classes (B, K), weight (B, K)."""
    ce = F.cross_entropy(logits.transpose(1, 2), target_classes, reduction='none')  # B x K
    is_void = (target_classes == void_index).to(ce)
    alpha_w = alpha * (1.0 - is_void) + (1.0 - alpha) * is_void
    return _nonzero_mean(ce * alpha_w * weight)


def pq_dice_loss(mask_logits: Tensor, target: Tensor, void: Tensor, weight: Tensor) -> Tensor:
    """PQ-style dice term. mask_logits/target (B, K, L), void (B, L) bool, weight (B, K)."""
    prob = mask_logits.softmax(1).masked_fill(void[:, None], 0.0)
    numer = 2.0 * (prob * target).sum(-1) + 1.0
    denom = prob.sum(-1) + target.sum(-1) + 1.0
    loss = (1.0 - numer / denom) * weight  # B x K
    num_slots = mask_logits.shape[1]
    return (loss.sum(1) * (0.75 / num_slots)).mean()


def mask_id_loss(mask_logits: Tensor, target: Tensor, void: Tensor) -> Tensor:
    """Mask-ID cross-entropy over the K slots. mask_logits/target (B, K, L), void (B, L)."""
    ce = F.cross_entropy(mask_logits, target, reduction='none')  # B x L
    return _nonzero_mean(ce.masked_fill(void, 0.0))


def pixel_insdis_loss(pixel_feature: Tensor, target: Tensor, sample_idx: Tensor,
                      temperature: float) -> Tensor:
    """Pixel instance discrimination on sampled pixels.

    pixel_feature (B, C, L), target (B, K, L), sample_idx (B, S).
    """
    idx_t = sample_idx[:, None].expand(-1, target.shape[1], -1)
    gt_s = torch.gather(target, 2, idx_t)  # B x K x S
    same = torch.einsum('bks,bkt->bst', gt_s, gt_s)  # B x S x S, symmetric
    same = same / same.sum(1, keepdim=True).clamp(min=1.0)
    idx_f = sample_idx[:, None].expand(-1, pixel_feature.shape[1], -1)
    feat_s = torch.gather(pixel_feature, 2, idx_f)  # B x C x S
    sim = torch.einsum('bcs,bct->bst', feat_s, feat_s) / temperature
    ce = F.cross_entropy(sim, same, reduction='none')  # B x S
    return _nonzero_mean(ce)


def aux_semantic_ce(logits: Tensor, gt: Tensor, void_label: int,
                    sample_idx: Optional[Tensor]) -> Tensor:
    """Semantic CE on (sampled) pixels. logits (B, C, L), gt (B, L) with ``void_label`` ignored."""
    if sample_idx is not None:
        gt = torch.gather(gt, 1, sample_idx)
        logits = torch.gather(logits, 2, sample_idx[:, None].expand(-1, logits.shape[1], -1))
    ce = F.cross_entropy(logits, gt, ignore_index=void_label, reduction='none')
    ce = ce * (gt != void_label).to(ce)
    return _nonzero_mean(ce)


def _stride_subsample(x: Tensor, size: Sequence[int]) -> Tensor:
    """Strided (nearest, no interpolation) subsampling of the last two dims to ``size``.

    The stride is ``H // h`` when it divides exactly and ``(H - 1) // (h - 1)`` otherwise (kMaX's
    odd-size convention, e.g. 1281 -> 321). Falls back to nearest resizing if neither fits.
    """
    in_h, in_w = x.shape[-2:]
    out_h, out_w = size
    if (in_h, in_w) == (out_h, out_w):
        return x

    def stride_of(n_in, n_out):
        if n_in % n_out == 0:
            return n_in // n_out
        return (n_in - 1) // max(n_out - 1, 1)

    sh, sw = stride_of(in_h, out_h), stride_of(in_w, out_w)
    if sh >= 1 and sw >= 1:
        y = x[..., ::sh, ::sw]
        if y.shape[-2] >= out_h and y.shape[-1] >= out_w:
            return y[..., :out_h, :out_w]
    squeeze = x.dim() == 3
    y = x[:, None] if squeeze else x
    y = F.interpolate(y.float(), size=(out_h, out_w), mode='nearest').to(x.dtype)
    return y[:, 0] if squeeze else y


def _resize_like(x: Tensor, size: Sequence[int]) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode='bilinear', align_corners=size[0] % 2 == 1)


# ----------------------------------------------------------------------------------------------
# Criterion
# ----------------------------------------------------------------------------------------------
@MODELS.register_module()
class KMaXCriterion(nn.Module):
    """kMaX-DeepLab criterion (see the module docstring for the terms).

    Args:
        num_classes: number of real classes N (class logits have N + 1 columns, the last is void).
        class_weight, dice_weight, mask_id_weight, insdis_weight, aux_semantic_weight: loss weights;
            a zero weight drops the term (and its key).
        insdis_temperature: temperature of the feature similarities (0.3).
        insdis_sample_k / insdis_sample_temperature: number of sampled pixels and the temperature
            on ``log(inverse GT-mask area)`` of the sampling distribution.
        aux_semantic_sample_k / aux_semantic_sample_temperature: the same for the auxiliary
            semantic loss; ``sample_k == 0`` uses every pixel.
        eos_coef: lower clamp of the PQ weights (``NO_OBJECT_WEIGHT``).
        ignore_index: ignore label of ``gt_semantic``.
    """

    def __init__(self,
                 num_classes: int,
                 class_weight: float = 3.0,
                 dice_weight: float = 3.0,
                 mask_id_weight: float = 0.3,
                 insdis_weight: float = 1.0,
                 aux_semantic_weight: float = 1.0,
                 insdis_temperature: float = 0.3,
                 insdis_sample_k: int = 4096,
                 insdis_sample_temperature: float = 1.5,
                 aux_semantic_sample_k: int = 4096,
                 aux_semantic_sample_temperature: float = 2.0,
                 eos_coef: float = 1e-5,
                 ignore_index: int = 255):
        super().__init__()
        self.num_classes = num_classes
        self.class_weight = class_weight
        self.dice_weight = dice_weight
        self.mask_id_weight = mask_id_weight
        self.insdis_weight = insdis_weight
        self.aux_semantic_weight = aux_semantic_weight
        self.insdis_temperature = insdis_temperature
        self.insdis_sample_k = insdis_sample_k
        self.insdis_sample_temperature = insdis_sample_temperature
        self.aux_semantic_sample_k = aux_semantic_sample_k
        self.aux_semantic_sample_temperature = aux_semantic_sample_temperature
        self.eos_coef = eos_coef
        self.ignore_index = ignore_index

    # -- targets ---------------------------------------------------------------------------------
    @torch.no_grad()
    def build_targets(self, outputs: dict, gt_masks: List[Tensor],
                      gt_labels: List[Tensor]) -> dict:
        """Match on the final output and build the per-slot targets shared by all outputs."""
        pred_logits = outputs['pred_logits'].detach().float()
        pred_masks = outputs['pred_masks'].detach().float()
        bsz, num_slots, h, w = pred_masks.shape
        device = pred_masks.device
        target = pred_masks.new_zeros((bsz, num_slots, h, w))
        target_classes = torch.full((bsz, num_slots), self.num_classes, dtype=torch.long,
                                    device=device)
        cls_weight_matched = pred_masks.new_zeros((bsz, num_slots))  # dice-loss weights
        dice_matched = pred_masks.new_zeros((bsz, num_slots))
        matched = torch.zeros((bsz, num_slots), dtype=torch.bool, device=device)
        indices = []
        for b in range(bsz):
            masks_b = gt_masks[b].to(device=device, dtype=torch.float32)
            labels_b = gt_labels[b].to(device=device, dtype=torch.long)
            assert masks_b.shape[-2:] == (h, w), (
                f'gt_masks[{b}] has size {tuple(masks_b.shape[-2:])}, predictions {(h, w)}')
            dice, cls_sim = _match_similarities(pred_logits[b], pred_masks[b], labels_b, masks_b)
            rows, cols = _solve_assignment(dice, cls_sim)
            indices.append((rows, cols))
            if rows.numel() == 0:
                continue
            target[b, rows] = masks_b[cols]
            target_classes[b, rows] = labels_b[cols]
            dice_matched[b, rows] = dice[rows, cols]
            cls_weight_matched[b, rows] = cls_sim[rows, cols].clamp(min=self.eos_coef)
            matched[b, rows] = True

        # Overlapping masks share a pixel evenly.
        target = target / target.sum(1, keepdim=True).clamp(min=1.0)
        # For binary (or normalised) masks the per-pixel sum is 0 or ~1; 0.5 avoids rounding.
        void = target.sum(1) < 0.5  # B x h x w
        area = target.flatten(2).sum(-1)  # B x K
        pixel_area = torch.einsum('bkhw,bk->bhw', target, area)
        inverse_area = (h * w) / pixel_area.clamp(min=1.0)

        # Unmatched slots: fraction of their predicted mass on void pixels.
        prob = pred_masks.softmax(1).flatten(2)
        void_f = void.flatten(1).to(prob)
        void_ratio = torch.einsum('bkl,bl->bk', prob, void_f) / (prob.sum(-1) + _SIM_EPS)
        class_term_weight = torch.where(matched, dice_matched, void_ratio).clamp(min=self.eos_coef)

        return dict(
            indices=indices,
            masks=target.flatten(2),
            labels=target_classes,
            class_weight=class_term_weight,
            dice_weight=cls_weight_matched,
            void=void,
            inverse_area=inverse_area,
            size=(h, w))

    # -- per-output losses -----------------------------------------------------------------------
    def _output_losses(self, output: dict, targets: dict) -> Dict[str, Tensor]:
        size = targets['size']
        losses = {}
        void = targets['void'].flatten(1)
        if self.class_weight > 0:
            losses['loss_pq_cls'] = self.class_weight * pq_class_loss(
                output['pred_logits'].float(), targets['labels'], targets['class_weight'],
                self.num_classes)
        if self.dice_weight > 0 or self.mask_id_weight > 0:
            mask_logits = _resize_like(output['pred_masks'].float(), size).flatten(2)
            if self.dice_weight > 0:
                losses['loss_pq_dice'] = self.dice_weight * pq_dice_loss(
                    mask_logits, targets['masks'], void, targets['dice_weight'])
            if self.mask_id_weight > 0:
                losses['loss_mask_id'] = self.mask_id_weight * mask_id_loss(
                    mask_logits, targets['masks'], void)
        if self.insdis_weight > 0 and output.get('pixel_feature') is not None:
            feat = _resize_like(output['pixel_feature'].float(), size).flatten(2)
            num = min(self.insdis_sample_k, feat.shape[-1])
            logits = _sampling_logits(targets['inverse_area'].flatten(1), void,
                                      self.insdis_sample_temperature)
            idx = _gumbel_topk(logits, num)
            losses['loss_insdis'] = self.insdis_weight * pixel_insdis_loss(
                feat, targets['masks'], idx, self.insdis_temperature)
        return losses

    def _aux_semantic_loss(self, logits: Tensor, gt_semantic: Tensor, targets: dict) -> Tensor:
        logits = logits.float()
        size = logits.shape[-2:]
        gt = gt_semantic.to(device=logits.device, dtype=torch.long)
        gt = _stride_subsample(gt, size)
        gt = torch.where((gt < 0) | (gt >= self.num_classes) | (gt == self.ignore_index),
                         torch.full_like(gt, self.num_classes), gt)
        logits = logits.flatten(2)
        gt = gt.flatten(1)
        sample_idx = None
        if self.aux_semantic_sample_k > 0:
            void = _stride_subsample(targets['void'], size).flatten(1)
            inverse_area = _stride_subsample(targets['inverse_area'], size).flatten(1)
            sample_logits = _sampling_logits(inverse_area, void,
                                             self.aux_semantic_sample_temperature)
            sample_idx = _gumbel_topk(sample_logits, min(self.aux_semantic_sample_k, gt.shape[-1]))
        return aux_semantic_ce(logits, gt, self.num_classes, sample_idx)

    def forward(self,
                outputs: dict,
                gt_masks: List[Tensor],
                gt_labels: List[Tensor],
                aux_semantic_logits: Optional[Tensor] = None,
                gt_semantic: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Compute the weighted losses.

        Args:
            outputs: ``dict(pred_logits (B, K, N+1), pred_masks (B, K, h, w),
                pixel_feature (B, C, h, w), aux_outputs=[dicts with the same keys])``.
            gt_masks: per image (G_i, h, w) binary masks at the prediction resolution.
            gt_labels: per image (G_i,) labels in [0, N).
            aux_semantic_logits: optional (B, N, h', w') logits of the auxiliary semantic head.
            gt_semantic: optional (B, H', W') long map with ``ignore_index``; it is strided-
                subsampled to the logits size.

        Returns:
            ``loss_pq_cls``, ``loss_pq_dice``, ``loss_mask_id``, ``loss_insdis``, ``loss_aux_sem``
            for the final output and ``d{i}.<name>`` (no aux semantic) for ``aux_outputs[i]``.
        """
        device_type = outputs['pred_masks'].device.type
        with torch.autocast(device_type=device_type, enabled=False):
            targets = self.build_targets(outputs, gt_masks, gt_labels)
            losses = self._output_losses(outputs, targets)
            if (self.aux_semantic_weight > 0 and aux_semantic_logits is not None
                    and gt_semantic is not None):
                losses['loss_aux_sem'] = self.aux_semantic_weight * self._aux_semantic_loss(
                    aux_semantic_logits, gt_semantic, targets)
            for i, aux in enumerate(outputs.get('aux_outputs', None) or []):
                for name, value in self._output_losses(aux, targets).items():
                    losses[f'd{i}.{name}'] = value
        return losses
