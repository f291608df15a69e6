"""Hybrid Distillation (Shi et al., "Hybrid Distillation: Connecting Masked Autoencoders with
Contrastive Learners", ICLR 2024, arXiv 2306.15876, OpenReview jUWktnsplU).

A student ViT is taught by two frozen teachers at once: it mimics the *final features* of a
supervised / contrastive teacher ``T_c`` (discrimination) and the *token relations* (attention
maps) of a masked-image-modeling teacher ``T_m`` at intermediate layers (diversity, no attention
collapse)::

    L = α · D_feat(P(S^L(M ⊙ x)), T_c^L(x) ⊙ M) + β · mean_{l ∈ I} D_rel(A_S^l(M ⊙ x), A_Tm^l(x) ⊙ M)

with α = β = 1 (paper). ``M`` keeps the non-redundant tokens chosen by the progressive redundant
token masking (``mmmask.ProgressiveRedundantMasking``): the student sees only them (+cls), the
teachers see the whole image and their outputs are restricted to the same tokens. No official code
exists (github.com/lygsbw/hybriddistill is empty); every choice the paper text we could read does
not pin down is listed in ``configs/hybrid_distill/README.md`` (Assumptions).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from torch import Tensor, nn

from mmmask.registry import MODELS
from ..masking import MaskSample
from .attention_maps import AttentionRecorder
from .maskalign import check_teacher_init, normalize_targets

__all__ = [
    'HybridDistill', 'HybridDistillHead', 'feature_distill_loss', 'relation_distill_loss',
    'visible_relations', 'vit_forward_with_attention'
]


# -- losses -------------------------------------------------------------------------------------
def feature_distill_loss(pred: Tensor, target: Tensor, beta: float = 2.0) -> Tensor:
    """``D_feat``: mean Smooth-L1 with threshold ``beta`` over every token and channel,
    ``0.5 d²/β`` if ``|d| < β`` else ``|d| - β/2`` (FD's feature loss, β = 2)."""
    if pred.shape != target.shape:
        raise ValueError(f'student projection {tuple(pred.shape)} vs teacher features '
                         f'{tuple(target.shape)}: set the neck out_channels to the CL teacher '
                         'width')
    return F.smooth_l1_loss(pred, target, beta=beta)


def relation_distill_loss(student: Tensor, teacher: Tensor, head_reduce: str = 'none',
                          eps: float = 1e-8) -> Tensor:
    """``D_rel``: KL(teacher ‖ student) of the row-stochastic relation maps ``[B, H, N, N]``,
    summed over keys and averaged over batch, heads and query tokens,
    ``mean_{b,h,i} Σ_j t_ij (log t_ij - log s_ij)``. ``head_reduce='mean'`` compares the
    head-averaged maps (teachers with another head count)."""
    if head_reduce == 'mean':
        student, teacher = student.mean(1, keepdim=True), teacher.mean(1, keepdim=True)
    elif head_reduce != 'none':
        raise ValueError(f"unknown head_reduce {head_reduce!r}; use 'none' or 'mean'")
    if student.shape != teacher.shape:
        raise ValueError(f'student relations {tuple(student.shape)} vs MIM teacher relations '
                         f"{tuple(teacher.shape)}: equal head counts are needed (or "
                         "head_reduce='mean')")
    t = teacher.float()
    kl = t * (torch.log(t.clamp_min(eps)) - torch.log(student.float().clamp_min(eps)))
    return kl.sum(-1).mean()


def visible_relations(attn: Tensor, ids_keep: Tensor) -> Tensor:
    """Restrict a full-image attention map ``[B, H, 1+L, 1+L]`` (cls first) to the cls token and
    the visible tokens ``ids_keep`` ``[B, K]`` (rows and columns, in that order) and renormalise
    each row: equal to the softmax of the teacher's logits over the visible keys only, i.e. the
    relations among the tokens the student sees (``T_m(x) ⊙ M``)."""
    B, H = attn.shape[:2]
    idx = torch.cat([ids_keep.new_zeros(B, 1), ids_keep + 1], dim=1)  # [B, 1+K]
    n = idx.shape[1]
    rows = torch.gather(attn, 2, idx.view(B, 1, n, 1).expand(B, H, n, attn.shape[-1]))
    sub = torch.gather(rows, 3, idx.view(B, 1, 1, n).expand(B, H, n, n))
    return sub / sub.sum(-1, keepdim=True)


@MODELS.register_module()
class HybridDistillHead(BaseModule):
    """The two Hybrid Distill losses: ``loss_feat = α · D_feat`` (CL teacher, final layer) and
    ``loss_rel = β · mean over the distilled layers of D_rel`` (MIM teacher relations).

    Args:
        feat_weight / rel_weight: α and β (1.0 and 1.0 in the paper).
        smooth_l1_beta: threshold of the Smooth-L1 feature loss (FD's 2.0; assumption).
        head_reduce: ``none`` (per-head KL, equal head counts) or ``mean``.
    """

    def __init__(self, feat_weight: float = 1.0, rel_weight: float = 1.0,
                 smooth_l1_beta: float = 2.0, head_reduce: str = 'none',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        if head_reduce not in ('none', 'mean'):
            raise ValueError(f"unknown head_reduce {head_reduce!r}; use 'none' or 'mean'")
        if feat_weight < 0 or rel_weight < 0 or smooth_l1_beta <= 0:
            raise ValueError('feat_weight/rel_weight must be >= 0 and smooth_l1_beta > 0')
        self.feat_weight, self.rel_weight = feat_weight, rel_weight
        self.smooth_l1_beta, self.head_reduce = smooth_l1_beta, head_reduce

    def loss(self, pred: Tensor, target: Tensor, student_rel: Sequence[Tensor],
             teacher_rel: Sequence[Tensor]) -> Dict[str, Tensor]:
        if len(student_rel) != len(teacher_rel):
            raise ValueError(f'{len(student_rel)} student vs {len(teacher_rel)} teacher relation '
                             'layers')
        losses = dict(loss_feat=self.feat_weight *
                      feature_distill_loss(pred, target, self.smooth_l1_beta))
        if student_rel:
            rel = torch.stack([
                relation_distill_loss(s, t, self.head_reduce)
                for s, t in zip(student_rel, teacher_rel)
            ]).mean()
            losses['loss_rel'] = self.rel_weight * rel
        return losses


# -- teachers -----------------------------------------------------------------------------------
def vit_forward_with_attention(vit: nn.Module, img: Tensor,
                               indices: Sequence[int]) -> Tuple[Tensor, Dict[int, Tensor]]:
    """Run an mmpretrain ``VisionTransformer`` (or ``mmmask.MaskedViT``) on the whole image.
    Returns the last block's raw output ``[B, 1+L, D]`` (before the final norm) and the attention
    maps ``[B, heads, 1+L, 1+L]`` of blocks ``indices`` (recorded by
    :class:`~mmmask.models.selfsup.attention_maps.AttentionRecorder`)."""
    x, grid = vit.patch_embed(img)
    x = torch.cat([vit.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
    x = x + resize_pos_embed(vit.pos_embed, vit.patch_resolution, grid,
                             mode=vit.interpolate_mode, num_extra_tokens=vit.num_extra_tokens)
    x = vit.pre_norm(vit.drop_after_pos(x))
    with AttentionRecorder(vit.layers, indices=indices) as rec:
        for layer in vit.layers:
            x = layer(x)
    return x, dict(rec.maps)


def _vit_spec(vit: nn.Module, name: str) -> Tuple[int, int, int]:
    """(depth, width, heads) of a ViT teacher/student, or a clear error."""
    if not all(hasattr(vit, a) for a in ('layers', 'patch_embed', 'pos_embed')):
        raise ValueError(f'HybridDistill {name} must be a ViT (mmpretrain VisionTransformer or '
                         f'mmmask.MaskedViT), got {type(vit).__name__}')
    if getattr(vit, 'cls_token', None) is None:
        raise ValueError(f'HybridDistill {name} needs a cls token (with_cls_token=True)')
    return len(vit.layers), vit.embed_dims, vit.layers[0].attn.num_heads


def _freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad = False
    module.eval()


@MODELS.register_module()
class HybridDistill(BaseSelfSupervisor):
    """Hybrid Distill (Shi et al., ICLR 2024).

    Args:
        backbone: the student, ``mmmask.MaskedViT`` (sees the visible tokens only).
        cl_teacher / mim_teacher: configs of any mmpretrain ``VisionTransformer`` (DeiT, MoCo v3,
            CLIP-style ``pre_norm=True``; MAE for the MIM one) with ``init_cfg=dict(type=
            'Pretrained', checkpoint=...)``; frozen, always in eval mode, no gradients.
        neck: projection of the student's final (normed) tokens to the CL teacher width, e.g.
            ``mmmask.DynamicAlignNeck`` with ``num_student_levels=1, fusion='simple'``.
        head: :class:`HybridDistillHead`.
        mask_generator: a generator returning ``ids_keep``; ``ProgressiveRedundantMasking`` (the
            paper) receives ``importance`` = cls→patch attention (head mean) of the
            ``mask_source`` teacher's last block.
        relation_layers: student blocks whose relations are distilled (default: every block but
            the last, whose output is taught by the CL teacher). Negative indices allowed.
        mim_layers: the matching MIM-teacher blocks (default: ``relation_layers``; needed when
            the depths differ).
        mask_source: ``cl`` or ``mim``: whose cls attention ranks the tokens' redundancy.
        target_norm: CL-teacher feature normalisation (``whiten`` = parameter-free LayerNorm).
        cl_teacher_norm / mim_teacher_norm: ``dict(mean=..., std=...)`` (0-255) of a teacher
            trained with other pixel statistics (CLIP); the batch is de-normalised with the data
            preprocessor's and re-normalised. None feeds the batch as is.
    """

    def __init__(self, backbone: dict, cl_teacher: dict, mim_teacher: dict, neck: dict,
                 head: dict,
                 mask_generator: dict = dict(type='mmmask.ProgressiveRedundantMasking',
                                             start_ratio=0.0, end_ratio=0.5),
                 relation_layers: Optional[Sequence[int]] = None,
                 mim_layers: Optional[Sequence[int]] = None, mask_source: str = 'cl',
                 target_norm: str = 'whiten', cl_teacher_norm: Optional[dict] = None,
                 mim_teacher_norm: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(backbone=backbone, neck=neck, head=head,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not hasattr(self.backbone, 'forward_masked'):
            raise ValueError('HybridDistill student must be mmmask.MaskedViT (forward_masked with '
                             f'ids_keep), got {type(self.backbone).__name__}')
        s_depth, _, s_heads = _vit_spec(self.backbone, 'student')
        self.cl_teacher = PRETRAIN_MODELS.build(cl_teacher)
        self.mim_teacher = PRETRAIN_MODELS.build(mim_teacher)
        _, c_width, _ = _vit_spec(self.cl_teacher, 'cl_teacher')
        m_depth, _, m_heads = _vit_spec(self.mim_teacher, 'mim_teacher')
        _freeze(self.cl_teacher)
        _freeze(self.mim_teacher)
        for name, t in (('cl_teacher', self.cl_teacher), ('mim_teacher', self.mim_teacher)):
            if tuple(t.patch_resolution) != tuple(self.backbone.patch_resolution):
                raise ValueError(f'{name} token grid {tuple(t.patch_resolution)} != student grid '
                                 f'{tuple(self.backbone.patch_resolution)}: give the teacher the '
                                 'same img_size/patch_size as the student')

        if relation_layers is None:
            relation_layers = list(range(s_depth - 1))
        relation_layers = [self._index(i, s_depth, 'relation_layers') for i in relation_layers]
        if mim_layers is None:
            if m_depth != s_depth:
                raise ValueError(f'student has {s_depth} blocks, the MIM teacher {m_depth}: set '
                                 'mim_layers (one MIM-teacher block per relation_layers entry)')
            mim_layers = relation_layers
        mim_layers = [self._index(i, m_depth, 'mim_layers') for i in mim_layers]
        if len(mim_layers) != len(relation_layers):
            raise ValueError(f'{len(relation_layers)} relation_layers vs {len(mim_layers)} '
                             'mim_layers: give one MIM-teacher block per student block')
        self.relation_layers, self.mim_layers = relation_layers, mim_layers
        if relation_layers and getattr(self.head, 'head_reduce', 'none') == 'none' and \
                m_heads != s_heads:
            raise ValueError(f'student has {s_heads} heads, the MIM teacher {m_heads}: per-head '
                             "relations need equal counts; set head.head_reduce='mean'")
        out_ch = getattr(self.neck, 'heads', None)
        if out_ch is not None and hasattr(out_ch[0], 'out_features') and \
                out_ch[0].out_features != c_width:
            raise ValueError(f'neck projects to {out_ch[0].out_features} channels, the CL teacher '
                             f'is {c_width} wide: set neck.out_channels={c_width}')
        if mask_source not in ('cl', 'mim'):
            raise ValueError(f"unknown mask_source {mask_source!r}; use 'cl' or 'mim'")
        self.mask_source = mask_source
        normalize_targets(torch.zeros(1, 2), target_norm)  # validate
        self.target_norm = target_norm
        self.mask_generator = MODELS.build(mask_generator)
        self._norms = {}
        for name, norm in (('cl', cl_teacher_norm), ('mim', mim_teacher_norm)):
            if norm is None:
                continue
            if set(norm) != {'mean', 'std'}:
                raise ValueError(f'{name}_teacher_norm must be dict(mean=[...], std=[...])')
            self.register_buffer(f'{name}_mean', torch.tensor(norm['mean']).view(1, -1, 1, 1),
                                 persistent=False)
            self.register_buffer(f'{name}_std', torch.tensor(norm['std']).view(1, -1, 1, 1),
                                 persistent=False)
            self._norms[name] = True

    @staticmethod
    def _index(i: int, depth: int, name: str) -> int:
        if not -depth <= i < depth:
            raise ValueError(f'{name} entry {i} out of range for {depth} blocks')
        return i % depth

    # -- teachers ----------------------------------------------------------------------------
    def train(self, mode: bool = True):
        super().train(mode)
        self.cl_teacher.eval()
        self.mim_teacher.eval()
        return self

    def init_weights(self) -> None:
        for name, t in (('cl_teacher', self.cl_teacher), ('mim_teacher', self.mim_teacher)):
            check_teacher_init(
                t, f'HybridDistill {name}',
                f'Download or train it (configs/hybrid_distill/README.md, "Teachers") and set '
                f'model.{name}.init_cfg.checkpoint')
        super().init_weights()
        _freeze(self.cl_teacher)
        _freeze(self.mim_teacher)

    def teacher_input(self, img: Tensor, which: str) -> Tensor:
        """The batch in teacher ``which``'s pixel statistics."""
        if which not in self._norms:
            return img
        pre = self.data_preprocessor
        mean, std = getattr(pre, 'mean', None), getattr(pre, 'std', None)
        if mean is None or not getattr(pre, '_enable_normalize', True):
            raise ValueError(f'{which}_teacher_norm needs a data preprocessor that normalises '
                             '(mean/std set)')
        raw = img * std.view(1, -1, 1, 1) + mean.view(1, -1, 1, 1)
        return (raw - getattr(self, f'{which}_mean')) / getattr(self, f'{which}_std')

    @torch.no_grad()
    def teacher_forward(self, img: Tensor) -> Dict[str, object]:
        """CL teacher: last block output + last attention; MIM teacher: attention of
        ``mim_layers`` (+ its last block when ``mask_source='mim'``)."""
        cl_feat, cl_maps = vit_forward_with_attention(self.cl_teacher,
                                                      self.teacher_input(img, 'cl'), [-1])
        mim_idx = list(self.mim_layers) + ([-1] if self.mask_source == 'mim' else [])
        mim_maps = {}
        if mim_idx:
            _, mim_maps = vit_forward_with_attention(self.mim_teacher,
                                                     self.teacher_input(img, 'mim'), mim_idx)
        src = cl_maps if self.mask_source == 'cl' else mim_maps
        return dict(cl_feat=cl_feat, cl_last_attention=cl_maps[-1],
                    mim_relations=[mim_maps[i] for i in self.mim_layers],
                    importance=src[-1][:, :, 0, 1:].mean(1))

    # -- student -----------------------------------------------------------------------------
    def forward_train(self, img: Tensor) -> Dict[str, object]:
        """All intermediate results of one step (used by :meth:`loss` and the tests)."""
        B = img.shape[0]
        grid = tuple(self.backbone.patch_resolution)
        if tuple(img.shape[-2:]) != tuple(self.backbone.img_size):
            raise ValueError(f'input {tuple(img.shape[-2:])} != student img_size '
                             f'{tuple(self.backbone.img_size)}: crop the images to that size')
        t = self.teacher_forward(img)
        sample = self.mask_generator(B, grid, img.device, importance=t['importance'])
        if not isinstance(sample, MaskSample) or sample.ids_keep is None:
            raise ValueError('HybridDistill drops the masked tokens: the mask generator must '
                             'return one MaskSample with ids_keep (mmmask.'
                             'ProgressiveRedundantMasking, mmmask.RandomMasking)')
        ids_keep = sample.ids_keep
        with AttentionRecorder(self.backbone.layers, indices=self.relation_layers) as rec:
            out = self.backbone.forward_masked(img, ids_keep=ids_keep)
        student_rel = [rec.maps[i] for i in self.relation_layers]
        teacher_rel = [visible_relations(a, ids_keep) for a in t['mim_relations']]
        y = normalize_targets(t['cl_feat'], self.target_norm)
        target = torch.cat([
            y[:, :1],
            torch.gather(y[:, 1:], 1, ids_keep.unsqueeze(-1).expand(-1, -1, y.shape[-1]))
        ], dim=1)
        pred = self.neck([out.tokens])[0]
        return dict(sample=sample, importance=t['importance'], student=out, pred=pred,
                    target=target, student_relations=student_rel, teacher_relations=teacher_rel)

    def extract_feat(self, inputs: Tensor):
        return self.backbone(inputs)

    def loss(self, inputs: Union[Tensor, List[Tensor]], data_samples=None,
             **kwargs) -> Dict[str, Tensor]:
        img = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        res = self.forward_train(img)
        losses = self.head.loss(res['pred'], res['target'], res['student_relations'],
                                res['teacher_relations'])
        losses['mask_ratio'] = img.new_tensor(float(res['sample'].mask.float().mean()))
        return losses
