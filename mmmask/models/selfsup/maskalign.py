"""MaskAlign: masked image modeling without reconstruction (Xue et al., "Stare at What You See:
Masked Image Modeling without Reconstruction", CVPR 2023, github.com/OpenDriveLab/maskalign).

A student ViT sees only the visible tokens (no mask token, no decoder); a frozen teacher sees the
whole image. The teacher's last-layer cls attention drives the mask (salient patches are more
likely kept), its block outputs - whitened by a parameter-free LayerNorm and gathered at the
visible positions - are the targets, and the student's block outputs are aligned to them by a
learnable level-fusion matrix and per-level linear heads (Dynamic Alignment).
"""
import os.path as osp
import warnings
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

__all__ = ['MaskAlign', 'DynamicAlignNeck', 'MultiLevelAlignHead']

#: OpenAI CLIP's pixel statistics on the 0-255 scale (the teacher's input normalisation).
CLIP_MEAN = (0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255)
CLIP_STD = (0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255)


def level_weights(scheme: str, num_levels: int) -> List[float]:
    """Per-level loss weights of the official ``--loss_weights``: ``mean`` (1/n each), ``out``
    (last level only), ``linear_decay`` (i / Σi), ``topK`` (1/K on the last K levels), ``midK``
    (level K only)."""
    n = num_levels
    if scheme == 'mean':
        return [1 / n] * n
    if scheme == 'out':
        return [0.] * (n - 1) + [1.]
    if scheme == 'linear_decay':
        return [i / sum(range(n)) for i in range(n)]
    if scheme.startswith('top') and scheme[3:].isdigit():
        k = int(scheme[3:])
        if not 0 < k <= n:
            raise ValueError(f'loss_weights={scheme!r}: K must be in 1..{n}')
        return [0.] * (n - k) + [1 / k] * k
    if scheme.startswith('mid') and scheme[3:].isdigit():
        k = int(scheme[3:])
        if not 0 <= k < n:
            raise ValueError(f'loss_weights={scheme!r}: K must be in 0..{n - 1}')
        return [0.] * k + [1.] + [0.] * (n - k - 1)
    raise ValueError(f'unknown loss_weights {scheme!r}; use mean, out, linear_decay, topK or midK')


def normalize_targets(y: Tensor, mode: str) -> Tensor:
    """Teacher target normalisation (official ``--target_norm``): ``whiten`` = parameter-free
    LayerNorm over channels (eps 1e-5), ``l2`` = unit norm, ``bn`` = whole-tensor
    standardisation (unbiased variance, eps 1e-6 as the official code), ``none``."""
    if mode == 'whiten':
        return F.layer_norm(y, (y.shape[-1], ))
    if mode == 'l2':
        return F.normalize(y, dim=-1)
    if mode == 'bn':
        return (y - y.mean()) / (y.var() + 1e-6)**.5
    if mode == 'none':
        return y
    raise ValueError(f'unknown target_norm {mode!r}; use whiten, l2, bn or none')


def check_teacher_init(teacher: nn.Module, what: str, fix: str) -> None:
    """Fail early when a frozen teacher's ``Pretrained`` checkpoint is missing (``fix`` says how to
    get it); warn when the teacher has none (a random teacher: tests and benchmarks only)."""
    cfg = teacher.init_cfg
    cfgs = cfg if isinstance(cfg, list) else [cfg] if cfg else []
    pretrained = [c for c in cfgs if c.get('type') == 'Pretrained']
    for c in pretrained:
        ckpt = c.get('checkpoint')
        if ckpt is None or ('://' not in str(ckpt) and not osp.isfile(ckpt)):
            raise ValueError(f'{what} checkpoint {ckpt!r} not found. {fix}')
    if not pretrained:
        warnings.warn(f'{what} has no Pretrained init_cfg: distilling a random teacher (only '
                      'meaningful for tests/benchmarks)')


@MODELS.register_module()
class DynamicAlignNeck(BaseModule):
    """Dynamic Alignment of MaskAlign: fuse the student's block outputs ``S_b`` into one feature per
    teacher level, ``S'_a = Σ_b W[a, b] S_b``, then a per-level head to the teacher width.

    Args:
        in_channels: student width. out_channels: teacher width.
        num_student_levels / num_teacher_levels: block counts.
        fusion: ``linear`` (W square, init I + 0.01, the paper's recipe), ``sum`` (W teacher x
            student, init 1/num_student_levels) or ``simple`` (no fusion; equal depths).
        head_type: ``linear`` (recipe), ``norm_linear``, ``mlp`` or ``mlp2`` (official options).
    """

    def __init__(self, in_channels: int, out_channels: int, num_student_levels: int = 12,
                 num_teacher_levels: Optional[int] = None, fusion: str = 'linear',
                 head_type: str = 'linear', norm_eps: float = 1e-6,
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(init_cfg)
        s = num_student_levels
        t = num_teacher_levels or s
        if fusion in ('linear', 'simple') and s != t:
            raise ValueError(f'fusion={fusion!r} needs equal student/teacher depths ({s} vs {t}); '
                             "use fusion='sum'")
        self.fusion, self.num_levels = fusion, t
        if fusion == 'linear':
            self.weights = nn.Parameter(torch.eye(s) + 0.01)
        elif fusion == 'sum':
            self.weights = nn.Parameter(torch.ones(t, s) / s)
        elif fusion == 'simple':
            self.weights = None
        else:
            raise ValueError(f'unknown fusion {fusion!r}; use linear, sum or simple')
        d, o = in_channels, out_channels

        def head() -> nn.Module:
            if head_type == 'linear':
                return nn.Linear(d, o)
            if head_type == 'norm_linear':
                return nn.Sequential(nn.LayerNorm(d, eps=norm_eps), nn.Linear(d, o))
            if head_type == 'mlp':
                return nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, o))
            if head_type == 'mlp2':
                return nn.Sequential(nn.Linear(d, d), nn.LayerNorm(d, eps=norm_eps),
                                     nn.Linear(d, o))
            raise ValueError(f'unknown head_type {head_type!r}')

        self.heads = nn.ModuleList([head() for _ in range(t)])

    def forward(self, hidden: Sequence[Tensor]) -> List[Tensor]:
        feats = list(hidden)
        if self.weights is not None:
            fused = torch.einsum('ab,bnkc->ankc', self.weights, torch.stack(feats))
            feats = list(fused.unbind(0))
        return [head(x) for head, x in zip(self.heads, feats)]


@MODELS.register_module()
class MultiLevelAlignHead(BaseModule):
    """MaskAlign's loss: Σ_levels w_l · criterion(pred_l, target_l) over all tokens (cls
    included). ``smoothl1`` counts 2 · SmoothL1(β=1) (recipe), ``l2`` the mean squared error (code
    default), ``l1`` the mean absolute error. ``loss_weights``: see :func:`level_weights`."""

    def __init__(self, loss_weights: str = 'top5', loss_type: str = 'smoothl1',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        if loss_type not in ('smoothl1', 'l2', 'l1'):
            raise ValueError(f'unknown loss_type {loss_type!r}; use smoothl1, l2 or l1')
        level_weights(loss_weights, 1000)  # validate the scheme's name early
        self.loss_weights, self.loss_type = loss_weights, loss_type

    def loss(self, preds: Sequence[Tensor], targets: Sequence[Tensor]) -> Tensor:
        if len(preds) != len(targets):
            raise ValueError(f'{len(preds)} aligned levels vs {len(targets)} teacher levels')
        loss = preds[0].new_zeros(())
        for w, x, y in zip(level_weights(self.loss_weights, len(preds)), preds, targets):
            if w <= 0:
                continue
            if self.loss_type == 'smoothl1':
                loss = loss + w * 2 * F.smooth_l1_loss(y, x)
            elif self.loss_type == 'l2':
                loss = loss + w * ((y - x)**2).mean()
            else:
                loss = loss + w * F.l1_loss(y, x)
        return loss


@MODELS.register_module()
class MaskAlign(BaseSelfSupervisor):
    """MaskAlign (Xue et al., CVPR 2023).

    Args:
        backbone: the student, a ``mmmask.MaskedViT`` (visible tokens only).
        teacher: config of any mmpretrain ``VisionTransformer`` (CLIP-style ``pre_norm=True``
            included) or ``mmmask.MaskedViT``, with ``init_cfg=dict(type='Pretrained',
            checkpoint=...)``; frozen, always in eval mode, excluded from gradients.
        neck: :class:`DynamicAlignNeck`. head: :class:`MultiLevelAlignHead`.
        mask_generator: a generator from ``mmmask.models.masking`` returning ``ids_keep``;
            ``mmmask.AttentionGuidedMasking`` (the paper) receives ``importance`` = the teacher's
            last-layer cls→patch attention averaged over heads.
        target_norm: see :func:`normalize_targets` (``whiten`` in the recipe).
        teacher_mean / teacher_std: the teacher's input statistics (0-255); the batch is
            de-normalised with the data preprocessor's mean/std and re-normalised with these
            (OpenAI CLIP's by default). None feeds the batch as is.
        teacher_img_size: resize the image (bicubic) before the teacher, e.g. 196 for a
            CLIP-L/14 teacher of a /16 student (official); None keeps the size.
    """

    def __init__(self, backbone: dict, teacher: dict, neck: dict, head: dict,
                 mask_generator: dict = dict(type='mmmask.AttentionGuidedMasking', ratio=0.7),
                 target_norm: str = 'whiten',
                 teacher_mean: Optional[Sequence[float]] = CLIP_MEAN,
                 teacher_std: Optional[Sequence[float]] = CLIP_STD,
                 teacher_img_size: Optional[int] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(backbone=backbone, neck=neck, head=head,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        normalize_targets(torch.zeros(1, 2), target_norm)  # validate
        self.target_norm = target_norm
        self.teacher = PRETRAIN_MODELS.build(teacher)
        if not hasattr(self.teacher, 'layers') or not hasattr(self.teacher, 'patch_embed'):
            raise ValueError('MaskAlign needs a ViT teacher (mmpretrain VisionTransformer or '
                             'mmmask.MaskedViT)')
        for p in self.teacher.parameters():
            p.requires_grad = False
        self.teacher.eval()
        self.mask_generator = MODELS.build(mask_generator)
        if (teacher_mean is None) != (teacher_std is None):
            raise ValueError('give both teacher_mean and teacher_std, or neither')
        if teacher_mean is not None:
            self.register_buffer('teacher_mean', torch.tensor(teacher_mean).view(1, -1, 1, 1),
                                 persistent=False)
            self.register_buffer('teacher_std', torch.tensor(teacher_std).view(1, -1, 1, 1),
                                 persistent=False)
        else:
            self.teacher_mean = self.teacher_std = None
        self.teacher_img_size = teacher_img_size

    # -- teacher ---------------------------------------------------------------------------
    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()
        return self

    def init_weights(self) -> None:
        check_teacher_init(
            self.teacher, 'MaskAlign teacher',
            'Train or download the teacher and set model.teacher.init_cfg.checkpoint (an HF CLIP '
            'vision tower converts with tools/model_converters/maskalign2mmmask.py --clip)')
        super().init_weights()
        for p in self.teacher.parameters():
            p.requires_grad = False

    def teacher_input(self, img: Tensor) -> Tensor:
        """Re-normalise the batch from the data preprocessor's statistics to the teacher's."""
        if self.teacher_mean is not None:
            pre = self.data_preprocessor
            mean, std = getattr(pre, 'mean', None), getattr(pre, 'std', None)
            if mean is None or not getattr(pre, '_enable_normalize', True):
                raise ValueError('teacher_mean/std need a data preprocessor that normalises '
                                 '(mean/std set); or set teacher_mean=None, teacher_std=None')
            raw = img * std.view(1, -1, 1, 1) + mean.view(1, -1, 1, 1)
            img = (raw - self.teacher_mean) / self.teacher_std
        if self.teacher_img_size is not None:
            img = F.interpolate(img, (self.teacher_img_size, ) * 2, mode='bicubic',
                                align_corners=False)
        return img

    @torch.no_grad()
    def teacher_forward(self, img: Tensor) -> Tuple[List[Tensor], Tensor]:
        """Teacher hidden states (index 0 = embeddings after ``pre_norm``, then every block's raw
        output, as HF ``hidden_states``) and last-layer attention ``[B, heads, N, N]``."""
        t = self.teacher
        x, grid = t.patch_embed(self.teacher_input(img))
        if t.cls_token is not None:
            x = torch.cat([t.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + resize_pos_embed(t.pos_embed, t.patch_resolution, grid, mode=t.interpolate_mode,
                                 num_extra_tokens=t.num_extra_tokens)
        x = t.pre_norm(t.drop_after_pos(x))
        hidden = [x]
        with AttentionRecorder(t.layers, indices=[-1]) as rec:
            for layer in t.layers:
                x = layer(x)
                hidden.append(x)
        return hidden, rec.maps[-1]

    def targets(self, teacher_hidden: Sequence[Tensor], ids_keep: Tensor) -> List[Tensor]:
        """Normalised teacher levels 1..T, cls + the visible tokens in ``ids_keep`` order."""
        out = []
        for y in teacher_hidden[1:]:
            y = normalize_targets(y, self.target_norm)
            patches = torch.gather(y[:, 1:], 1,
                                   ids_keep.unsqueeze(-1).expand(-1, -1, y.shape[-1]))
            out.append(torch.cat([y[:, :1], patches], dim=1))
        return out

    # -- student ---------------------------------------------------------------------------
    def forward_train(self, img: Tensor) -> Dict[str, object]:
        """All intermediate results of one step (used by :meth:`loss` and the parity tests)."""
        t_hidden, t_attn = self.teacher_forward(img)
        B = img.shape[0]
        grid = (img.shape[-2] // self.backbone.patch_embed.projection.stride[0],
                img.shape[-1] // self.backbone.patch_embed.projection.stride[1])
        L = grid[0] * grid[1]
        if t_hidden[0].shape[1] - 1 != L:
            raise ValueError(f'teacher has {t_hidden[0].shape[1] - 1} patch tokens, the student '
                             f'{L}: set teacher_img_size so that both grids match')
        importance = t_attn[:, :, 0, 1:].mean(1)
        sample = self.mask_generator(B, grid, img.device, importance=importance)
        if not isinstance(sample, MaskSample):
            raise ValueError(f'MaskAlign needs one mask per image, got {type(sample).__name__} '
                             'from the mask generator: use mmmask.AttentionGuidedMasking or '
                             'mmmask.RandomMasking')
        if sample.ids_keep is None:
            raise ValueError('MaskAlign drops masked tokens: the mask generator must keep a fixed '
                             'number of tokens (mmmask.AttentionGuidedMasking, '
                             'mmmask.RandomMasking)')
        out = self.backbone.forward_masked(img, ids_keep=sample.ids_keep)
        aligned = self.neck(out.hidden)
        targets = self.targets(t_hidden, sample.ids_keep)
        return dict(teacher_hidden=t_hidden, teacher_attention=t_attn, importance=importance,
                    sample=sample, student_hidden=out.hidden, aligned=aligned, targets=targets)

    def extract_feat(self, inputs: Tensor):
        return self.backbone(inputs)

    def loss(self, inputs: Union[Tensor, List[Tensor]], data_samples=None,
             **kwargs) -> Dict[str, Tensor]:
        img = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        res = self.forward_train(img)
        return dict(loss=self.head.loss(res['aligned'], res['targets']))
