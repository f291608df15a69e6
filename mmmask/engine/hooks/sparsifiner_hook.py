"""Training side of Sparsifiner (Wei et al., CVPR 2023): phase switch, losses, classifier.

The official schedule (``TRAIN_STRATEGY.INDICATOR`` of the default yaml) runs two phases:

* phase 1, ``attn_recon`` (5 epochs): only the connectivity predictors are optimised, with the
  attention-reconstruction loss ``0.01 · Σ_l MSE_sum(A^_l, A_l) / L``; the backbone runs dense
  attention and is not updated (CE weight 0, token distillation weight 0);
* phase 2, ``cls_distill`` (45 epochs): masks applied, backbone optimised with
  ``CE + 0.5 · KL(cls, teacher cls) + 0.5 · MSE(patch tokens, teacher tokens)``; the predictors get
  no gradient (detached masks).

Here: :class:`SparsifinerClassifier` (an mmpretrain ``ImageClassifier`` with the distillation
teacher and the per-phase loss weights), :class:`SparsifinerReconLoss` (``MODELS``) and
:class:`SparsifinerPhaseHook` (``HOOKS``), which switches the phase at a configured epoch or
iteration, sets the loss weights and freezes what the phase does not train.

These classes are kept here (not under ``mmmask.models.backbones``) so that the backbone test,
which builds every model registered from the backbones package, sees only the backbone;
``mmmask.models.backbones.sparsifiner`` imports this module so that they register with it.
"""
import copy
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.models.classifiers import ImageClassifier
from torch import Tensor, nn

from mmmask.registry import HOOKS, MODELS

__all__ = ['SparsifinerReconLoss', 'SparsifinerClassifier', 'SparsifinerPhaseHook',
           'SPARSIFINER_PHASE_WEIGHTS']

#: official loss weights of the two phases (default yaml + the per-strategy overrides of main.py)
SPARSIFINER_PHASE_WEIGHTS = {
    1: dict(cls=0.0, cls_distill=0.0, token_distill=0.0, recon=1.0),
    2: dict(cls=1.0, cls_distill=0.5, token_distill=0.5, recon=0.0),
}


@MODELS.register_module()
class SparsifinerReconLoss(nn.Module):
    """Attention reconstruction (official ``LOSS.ATTN_RECON``, criterion MSE):
    ``loss_weight · Σ_l MSE_sum(A^_l, A_l[..., 1:, :]) / L``.

    ``approx``: per layer ``(B, H, N-1, N)`` approximations; ``dense``: per layer ``(B, H, N, N)``
    dense attention maps (targets, detached; the CLS query row is dropped).
    """

    def __init__(self, loss_weight: float = 0.01) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, approx: Sequence[Tensor], dense: Sequence[Tensor]) -> Tensor:
        if len(approx) != len(dense) or not approx:
            raise ValueError(f'need one dense map per approximation, got {len(approx)} and '
                             f'{len(dense)}')
        total = 0.
        for a, d in zip(approx, dense):
            total = total + F.mse_loss(a, d[..., 1:, :].detach(), reduction='sum')
        return self.loss_weight * total / len(approx)


@MODELS.register_module()
class SparsifinerClassifier(ImageClassifier):
    """``ImageClassifier`` for a :class:`mmmask.Sparsifiner` backbone with the official losses.

    Args:
        backbone, neck, head, train_cfg, data_preprocessor, init_cfg: as ``ImageClassifier``.
        teacher: config of a dense teacher classifier (e.g. mmpretrain ``ImageClassifier`` with a
            DeiT ``VisionTransformer`` backbone, ``out_type='raw'``, and its ``init_cfg``
            pre-trained); its final tokens give the CLS logits (head on token 0) and the patch
            tokens. Kept out of the module tree (not saved, not optimised), always in eval mode.
        recon_loss: config of the reconstruction loss (:class:`SparsifinerReconLoss`).
        phase: initial phase (1: reconstruction, 2: sparse); ``None`` keeps the backbone's.
        phase1_weights, phase2_weights: multipliers of ``cls``, ``cls_distill``,
            ``token_distill``, ``recon`` in each phase (default :data:`SPARSIFINER_PHASE_WEIGHTS`,
            distillation weights 0 without a teacher; a partial dict updates them).
        freeze_backbone_in_recon: in phase 1 only the predictors are trainable (official: a
            separate mask-predictor optimiser); False trains everything in phase 1 (toy setting).
    """

    def __init__(self, backbone: dict, head: dict, neck: Optional[dict] = None,
                 teacher: Optional[dict] = None,
                 recon_loss: dict = dict(type='mmmask.SparsifinerReconLoss', loss_weight=0.01),
                 phase: Optional[int] = None, phase1_weights: Optional[dict] = None,
                 phase2_weights: Optional[dict] = None,
                 freeze_backbone_in_recon: bool = True, train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg=None) -> None:
        if data_preprocessor is None:  # mmpretrain's default, found from any default scope
            data_preprocessor = dict(type='mmpretrain.ClsDataPreprocessor')
        super().__init__(backbone=backbone, neck=neck, head=head, train_cfg=train_cfg,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not hasattr(self.backbone, 'forward_details'):
            raise TypeError(f'SparsifinerClassifier needs a mmmask.Sparsifiner backbone, got '
                            f'{type(self.backbone).__name__}')
        self.recon_loss = MODELS.build(recon_loss)
        self._teacher: List[nn.Module] = []
        if teacher is not None:
            built = MODELS.build(teacher)
            built.requires_grad_(False)
            self._teacher.append(built.eval())
        self.phase_weights = copy.deepcopy(SPARSIFINER_PHASE_WEIGHTS)
        if teacher is None:  # no distillation unless asked for (then the teacher is missing)
            for weights in self.phase_weights.values():
                weights.update(cls_distill=0.0, token_distill=0.0)
        self.phase_weights[1].update(phase1_weights or {})
        self.phase_weights[2].update(phase2_weights or {})
        self.freeze_backbone_in_recon = freeze_backbone_in_recon
        self.loss_weights: Dict[str, float] = {}
        self.set_phase(self.backbone.phase if phase is None else phase)

    @property
    def teacher(self) -> Optional[nn.Module]:
        return self._teacher[0] if self._teacher else None

    @property
    def phase(self) -> int:
        return self.backbone.phase

    def set_phase(self, phase: int, weights: Optional[dict] = None) -> None:
        """Switch the backbone to ``phase``, use its loss weights (or ``weights``) and freeze what
        the phase does not train."""
        self.backbone.set_phase(phase)
        self.loss_weights = dict(self.phase_weights[phase], **(weights or {}))
        if phase == 2 and self.loss_weights['recon']:
            raise ValueError('the reconstruction loss trains the predictors, which phase 2 '
                             'freezes (detached masks): set its phase-2 weight to 0')
        needs_teacher = [k for k in ('cls_distill', 'token_distill') if self.loss_weights[k]]
        if needs_teacher and self.teacher is None:
            raise ValueError(f'Sparsifiner phase {phase} weights {needs_teacher} need a teacher: '
                             'pass teacher=... or set these weights to 0 (phase1_weights / '
                             'phase2_weights)')
        predictor_only = phase == 1 and self.freeze_backbone_in_recon
        for name, p in self.named_parameters():
            if '.bias_provider.' in name:
                p.requires_grad_(phase == 1)
            else:
                p.requires_grad_(not predictor_only)

    def init_weights(self) -> None:
        super().init_weights()
        if self.teacher is not None:
            self.teacher.init_weights()
            self.teacher.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    @torch.no_grad()
    def teacher_outputs(self, inputs: Tensor):
        """``(cls logits, patch tokens)`` of the teacher (official ``VisionTransformerTeacher``)."""
        teacher = self.teacher
        ref = next(teacher.parameters())
        if ref.device != inputs.device:
            teacher.to(inputs.device)
        raw = teacher.backbone(inputs)[-1]
        if raw.dim() != 3:
            raise ValueError('the teacher backbone must return raw tokens: set its '
                             "out_type='raw'")
        return teacher.head((raw[:, 0], )), raw[:, 1:]

    def loss(self, inputs: Tensor, data_samples) -> Dict[str, Tensor]:
        w = self.loss_weights
        outs, details = self.backbone.forward_details(inputs)
        feats = self.neck(outs) if self.with_neck else outs
        losses: Dict[str, Tensor] = {}
        if w['cls']:
            for key, value in self.head.loss(feats, data_samples).items():
                losses[key if key != 'loss' else 'loss_cls'] = (
                    value * w['cls'] if 'loss' in key else value)
        if w['cls_distill'] or w['token_distill']:
            t_logits, t_tokens = self.teacher_outputs(inputs)
            if w['cls_distill']:
                s_logits = self.head(feats)
                losses['loss_cls_distill'] = w['cls_distill'] * F.kl_div(
                    F.log_softmax(s_logits, dim=-1), F.log_softmax(t_logits, dim=-1),
                    reduction='batchmean', log_target=True)
            if w['token_distill']:
                s_tokens = details['patch_tokens']
                if s_tokens is None:
                    raise ValueError('token distillation needs final_norm=True on the backbone')
                mask = details['token_mask'][-1]
                if mask is not None:
                    s_tokens, t_tokens = s_tokens[mask], t_tokens[mask]
                losses['loss_token_distill'] = w['token_distill'] * F.mse_loss(
                    s_tokens, t_tokens)
        if w['recon']:
            losses['loss_recon'] = w['recon'] * self.recon_loss(details['approx_attn'],
                                                                details['attn'])
        if not losses:
            raise ValueError(f'every Sparsifiner loss weight is 0 in phase {self.phase}')
        return losses


@HOOKS.register_module()
class SparsifinerPhaseHook(Hook):
    """Switch a :class:`SparsifinerClassifier` from phase 1 (reconstruction) to phase 2 (sparse).

    Phase 1 runs before ``switch_epoch`` (epoch-based loops) or ``switch_iter`` (iteration-based;
    give exactly one), phase 2 from there on; the hook sets the model's phase, loss weights
    (``phase1_weights`` / ``phase2_weights`` update the model's defaults) and trainable
    parameters before every training iteration, so resuming mid-run lands in the right phase.
    ``switch_epoch=0`` (or ``switch_iter=0``) skips phase 1.
    """
    priority = 'NORMAL'

    def __init__(self, switch_epoch: Optional[int] = None, switch_iter: Optional[int] = None,
                 phase1_weights: Optional[dict] = None,
                 phase2_weights: Optional[dict] = None) -> None:
        if (switch_epoch is None) == (switch_iter is None):
            raise ValueError('SparsifinerPhaseHook needs exactly one of switch_epoch / '
                             'switch_iter')
        self.switch_epoch, self.switch_iter = switch_epoch, switch_iter
        self.weights = {1: phase1_weights or {}, 2: phase2_weights or {}}
        self.current: Optional[int] = None

    @staticmethod
    def _model(runner) -> nn.Module:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'set_phase'):
            raise TypeError(f'SparsifinerPhaseHook needs a SparsifinerClassifier, got '
                            f'{type(model).__name__}')
        return model

    def phase_at(self, epoch: int, iteration: int) -> int:
        """The phase of 0-based ``epoch`` / global ``iteration``."""
        if self.switch_epoch is not None:
            return 1 if epoch < self.switch_epoch else 2
        return 1 if iteration < self.switch_iter else 2

    def _apply(self, runner) -> None:
        phase = self.phase_at(runner.epoch, runner.iter)
        if phase != self.current:
            model = self._model(runner)
            model.set_phase(phase, self.weights[phase])
            self.current = phase
            runner.logger.info(f'Sparsifiner: phase {phase} from epoch {runner.epoch} / '
                               f'iteration {runner.iter}, loss weights {model.loss_weights}')

    def before_train(self, runner) -> None:
        self.current = None
        self._apply(runner)

    def before_train_epoch(self, runner) -> None:
        self._apply(runner)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._apply(runner)
