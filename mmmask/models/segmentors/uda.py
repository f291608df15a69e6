"""DACS self-training for unsupervised domain adaptation (UDA) of semantic segmentation.

Tranheden et al., "DACS: Domain Adaptation via Cross-domain Mixed Sampling", WACV 2021, with the
additions of Hoyer et al., "DAFormer", CVPR 2022 (EMA teacher with alpha 0.999, pseudo-label
confidence weighting with optional top/bottom bands ignored, ImageNet feature distance on thing
classes). Written for mmseg 1.x / mmengine; the inference graph is the student segmentor alone.

Data format (produced by ``mmmask.UDADataset`` and ``pseudo_collate``)::

    dict(inputs=[CxHxW uint8 source images], data_samples=[SegDataSample with gt_sem_seg],
         target_inputs=[CxHxW uint8 target images], target_data_samples=[SegDataSample])

``mmmask.UDASegDataPreProcessor`` (mmseg's ``SegDataPreProcessor`` applied to each domain) turns
that into batched ``inputs``/``target_inputs`` tensors. Target labels, if present, are never read
during training. Validation batches have the usual mmseg ``inputs``/``data_samples`` format.
"""
import random
from contextlib import contextmanager
from copy import deepcopy
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.structures import PixelData
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.structures import SegDataSample
from torch import Tensor, nn

from mmmask.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS

__all__ = [
    'DACS', 'UDASegDataPreProcessor', 'UDAOptimWrapperConstructor', 'ema_alpha',
    'pseudo_label_weight', 'class_mix_masks', 'downscale_label_ratio', 'strong_transform'
]


@MODELS.register_module()
class UDASegDataPreProcessor(SegDataPreProcessor):
    """mmseg's ``SegDataPreProcessor`` applied to the source and, when the batch has them, to the
    ``target_inputs``/``target_data_samples`` of a UDA training batch (same normalisation and
    padding for both domains)."""

    def forward(self, data: dict, training: bool = False) -> dict:
        if 'target_inputs' not in data:
            return super().forward(data, training)
        source = super().forward(
            dict(inputs=data['inputs'], data_samples=data.get('data_samples')), training)
        target = super().forward(
            dict(inputs=data['target_inputs'], data_samples=data.get('target_data_samples')),
            training)
        return dict(inputs=source['inputs'], data_samples=source['data_samples'],
                    target_inputs=target['inputs'],
                    target_data_samples=target['data_samples'])


# -- the pieces of DACS, as functions that the tests check one by one ---------------------------
def ema_alpha(step: int, alpha: float) -> float:
    """Teacher momentum after ``step`` student updates: ``min(1 - 1 / (step + 1), alpha)``."""
    return min(1.0 - 1.0 / (step + 1), alpha)


def pseudo_label_weight(probs: Tensor, threshold: float, ignore_top: int = 0,
                        ignore_bottom: int = 0) -> Tuple[Tensor, Tensor]:
    """Pseudo-labels and their per-pixel weight from ``(B, C, H, W)`` teacher probabilities.

    The weight is one number for the whole batch, the fraction of pixels whose top probability is
    at least ``threshold`` (as DAFormer), set to 0 in the top ``ignore_top`` and bottom
    ``ignore_bottom`` rows. Returns ``(labels (B, H, W) long, weight (B, H, W) float)``.
    """
    top_prob, labels = probs.max(dim=1)
    confident = (top_prob >= threshold).float().mean()
    weight = confident * torch.ones_like(top_prob)
    if ignore_top > 0:
        weight[:, :ignore_top, :] = 0
    if ignore_bottom > 0:
        weight[:, -ignore_bottom:, :] = 0
    return labels, weight


def class_mix_masks(labels: Tensor, ignore_index: int = 255,
                    generator: Optional[np.random.Generator] = None) -> Tensor:
    """ClassMix masks ``(B, H, W)`` (1 = take the source pixel) from source labels ``(B, H, W)``.

    Per image, ``ceil(n / 2)`` (DAFormer's ``(n + n % 2) / 2``) of its ``n`` classes are drawn
    without replacement; the ignore index is not a class.
    """
    rng = generator if generator is not None else np.random
    masks = []
    for label in labels:
        classes = torch.unique(label)
        classes = classes[classes != ignore_index]
        n = int(classes.numel())
        chosen = classes[torch.as_tensor(rng.choice(n, (n + n % 2) // 2, replace=False),
                                         dtype=torch.long, device=classes.device)]
        masks.append(torch.isin(label, chosen))
    return torch.stack(masks).float()


def downscale_label_ratio(gt: Tensor, scale_factor: int, min_ratio: float, num_classes: int,
                          ignore_index: int = 255) -> Tensor:
    """``(B, 1, H, W)`` labels -> ``(B, 1, H/s, W/s)``: each cell's majority class, or
    ``ignore_index`` where it covers less than ``min_ratio`` of the cell (or is the ignore)."""
    if scale_factor <= 1:
        raise ValueError(f'scale_factor must be > 1, got {scale_factor}')
    labels = gt.clone()
    labels[labels == ignore_index] = num_classes
    onehot = F.one_hot(labels.squeeze(1).long(), num_classes + 1).permute(0, 3, 1, 2).float()
    ratio, out = F.avg_pool2d(onehot, kernel_size=scale_factor).max(dim=1, keepdim=True)
    out[out == num_classes] = ignore_index
    out[ratio < min_ratio] = ignore_index
    return out


def _denorm(img: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    return (img * std + mean) / 255.0


def _renorm(img: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    return (img * 255.0 - mean) / std


def strong_transform(img: Tensor, mean: Tensor, std: Tensor, color_jitter: float,
                     jitter_strength: float, jitter_probability: float, blur: float) -> Tensor:
    """DACS' strong augmentation of one normalised ``(1, 3, H, W)`` image.

    Colour jitter (brightness/contrast/saturation/hue, all of strength ``jitter_strength``) when
    ``color_jitter > jitter_probability``, then a Gaussian blur (sigma ~ U(0.15, 1.15), kernel
    ~10% of the image side, odd) when ``blur > 0.5``; ``color_jitter`` and ``blur`` are the
    uniform draws made once per batch, as in DAFormer. The jitter is torchvision's
    ``ColorJitter`` (kornia's is not a dependency here).
    """
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional as TF
    if color_jitter > jitter_probability:
        s = jitter_strength
        raw = _denorm(img, mean, std).clamp(0, 1)
        raw = v2.ColorJitter(brightness=s, contrast=s, saturation=s, hue=s)(raw)
        img = _renorm(raw, mean, std)
    if blur > 0.5:
        sigma = float(np.random.uniform(0.15, 1.15))
        h, w = img.shape[-2:]
        ky = int(np.floor(np.ceil(0.1 * h) - 0.5 + np.ceil(0.1 * h) % 2))
        kx = int(np.floor(np.ceil(0.1 * w) - 0.5 + np.ceil(0.1 * w) % 2))
        if kx >= 1 and ky >= 1:
            img = TF.gaussian_blur(img, kernel_size=[kx, ky], sigma=[sigma, sigma])
    return img


def _drop_params(optimizer: torch.optim.Optimizer, params) -> int:
    """Remove ``params`` from ``optimizer``'s groups (and groups left empty); returns how many."""
    ids = {id(p) for p in params}
    removed = 0
    groups = []
    for group in optimizer.param_groups:
        kept = [p for p in group['params'] if id(p) not in ids]
        removed += len(group['params']) - len(kept)
        if kept:
            group['params'] = kept
            groups.append(group)
    optimizer.param_groups[:] = groups
    return removed


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class UDAOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor, minus the parameters of the model's frozen copies (the EMA
    teacher and the ImageNet model of ``mmmask.DACS``). Use it in UDA configs
    (``optim_wrapper=dict(constructor='mmmask.UDAOptimWrapperConstructor', ...)``): the optimizer
    then has the same groups when a checkpoint is resumed."""

    def __call__(self, model: nn.Module) -> OptimWrapper:
        optim_wrapper = super().__call__(model)
        module = model.module if is_model_wrapper(model) else model
        if hasattr(module, 'frozen_parameters'):
            _drop_params(optim_wrapper.optimizer, module.frozen_parameters())
        return optim_wrapper


class _FixedPixelWeight:
    """Stands in for a decode head's pixel sampler so that mmseg's ``loss_by_feat`` weighs each
    pixel's loss with a given ``(B, H, W)`` map."""

    def __init__(self, weight: Tensor) -> None:
        self.weight = weight
        self.used = False

    def sample(self, seg_logits: Tensor, seg_label: Tensor) -> Tensor:
        self.used = True
        weight = self.weight
        if weight.shape[-2:] != seg_label.shape[-2:]:
            weight = F.interpolate(weight[:, None], size=seg_label.shape[-2:], mode='nearest')[:, 0]
        return weight


@contextmanager
def _pixel_weight(heads: Sequence[nn.Module], weight: Optional[Tensor]):
    if weight is None:
        yield
        return
    saved = [head.sampler for head in heads]
    samplers = [_FixedPixelWeight(weight) for _ in heads]
    for head, sampler in zip(heads, samplers):
        head.sampler = sampler
    try:
        yield
    finally:
        for head, old in zip(heads, saved):
            head.sampler = old
    unused = [type(h).__name__ for h, s in zip(heads, samplers) if not s.used]
    if unused:
        raise RuntimeError(f'{unused} ignore pixel weights (their loss_by_feat does not read '
                           f'self.sampler): DACS needs them for the pseudo-label confidence')


@MODELS.register_module()
class DACS(BaseSegmentor):
    """Student segmentor + EMA teacher trained with DACS class-mixing on target pseudo-labels.

    Args:
        model: the student, an mmseg ``EncoderDecoder`` config (or subclass). Its
            ``data_preprocessor`` becomes this model's unless ``data_preprocessor`` is given; an
            mmseg ``SegDataPreProcessor`` config (either) becomes
            ``mmmask.UDASegDataPreProcessor`` with the same settings.
        alpha: EMA momentum cap; the teacher's momentum after ``t`` steps is
            ``min(1 - 1 / (t + 1), alpha)``.
        pseudo_threshold: teacher confidence needed for a target pixel to count as confident.
        psweight_ignore_top / psweight_ignore_bottom: rows at the top/bottom of the target
            image whose pseudo-label weight is 0.
        imnet_feature_dist_lambda: weight of the ImageNet feature distance (0 = off).
        imnet_feature_dist_classes: classes where the distance is taken (None = everywhere).
        imnet_feature_dist_scale_min_ratio: min share of a feature cell that one of those
            classes must cover.
        mix: only ``'class'`` (ClassMix).
        blur, color_jitter_strength, color_jitter_probability: strong augmentation of the
            mixed image.
        mfm: Masked Feature Modeling (Zhou et al., arXiv 2509.13801), off when None:
            ``dict(rebuilder=dict(type='mmmask.MFMRebuilder', ...), loss_weight=lambda,
            on='target')``. The student's features of the (un-mixed) target images are masked
            and rebuilt by the rebuilder (``self.mfm_rebuilder``), the student's decode head
            classifies them, and ``lambda * CE`` against the teacher's target pseudo-labels,
            weighted by their confidence weight, is logged as ``mfm.decode.loss_ce`` and added
            to the total. Training only: inference is the student alone.
    """

    def __init__(self, model: dict, alpha: float = 0.999, pseudo_threshold: float = 0.968,
                 psweight_ignore_top: int = 0, psweight_ignore_bottom: int = 0,
                 imnet_feature_dist_lambda: float = 0.0,
                 imnet_feature_dist_classes: Optional[Sequence[int]] = None,
                 imnet_feature_dist_scale_min_ratio: Optional[float] = None,
                 mix: str = 'class', blur: bool = True, color_jitter_strength: float = 0.2,
                 color_jitter_probability: float = 0.2, mfm: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        model = ConfigDict(deepcopy(dict(model)))  # EncoderDecoder reads test_cfg.mode
        student_pre = model.pop('data_preprocessor', None)
        if data_preprocessor is None:
            if student_pre is None:
                raise ValueError('DACS needs a data_preprocessor (in the student config or here)')
            data_preprocessor = student_pre
        # mmengine's Runner passes the config's top-level (plain mmseg) data_preprocessor here
        data_preprocessor = dict(data_preprocessor)
        if data_preprocessor.get('type') in ('SegDataPreProcessor', 'mmseg.SegDataPreProcessor'):
            data_preprocessor['type'] = 'mmmask.UDASegDataPreProcessor'
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if mix != 'class':
            raise ValueError(f"DACS supports only mix='class', got {mix!r}")
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f'alpha must be in [0, 1), got {alpha}')
        self.model = MODELS.build(model)
        self.teacher = deepcopy(self.model)
        self.teacher.requires_grad_(False)
        self.alpha = alpha
        self.pseudo_threshold = pseudo_threshold
        self.psweight_ignore_top = psweight_ignore_top
        self.psweight_ignore_bottom = psweight_ignore_bottom
        self.fdist_lambda = imnet_feature_dist_lambda
        self.fdist_classes = None if imnet_feature_dist_classes is None else \
            [int(c) for c in imnet_feature_dist_classes]
        self.fdist_scale_min_ratio = imnet_feature_dist_scale_min_ratio
        if self.fdist_lambda > 0:
            if self.fdist_classes is not None and self.fdist_scale_min_ratio is None:
                raise ValueError('imnet_feature_dist_classes needs '
                                 'imnet_feature_dist_scale_min_ratio (DAFormer: 0.75)')
            self.imnet_model = MODELS.build(deepcopy(model))
            self.imnet_model.requires_grad_(False)
        else:
            self.imnet_model = None
        self.blur = blur
        self.color_jitter_strength = color_jitter_strength
        self.color_jitter_probability = color_jitter_probability
        self.train_cfg, self.test_cfg = train_cfg, test_cfg
        self.mfm_rebuilder, self.mfm_lambda = self._build_mfm(mfm)
        # loss computations done / student steps the teacher reflects (saved, so resume works)
        self.register_buffer('local_iter', torch.tensor(0, dtype=torch.long))
        self.register_buffer('ema_step', torch.tensor(0, dtype=torch.long))
        self._pruned_optimizers = set()

    #: top-level children of DACS; a state dict with none of them is a plain segmentor's
    _OWN_KEYS = ('model.', 'teacher.', 'imnet_model.', 'mfm_rebuilder.', 'local_iter', 'ema_step',
                 'data_preprocessor.')

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Accept a plain segmentor checkpoint (keys ``backbone.*``, ``decode_head.*``, ...),
        e.g. ``load_from`` a source-only model: it becomes the student and the teacher (the
        teacher and the ImageNet model are copied from the student again at the first step)."""
        keys = [k for k in state_dict if k.startswith(prefix)]
        if keys and not any(k[len(prefix):].startswith(self._OWN_KEYS) for k in keys):
            print_log(f'DACS: loading a plain segmentor state dict ({len(keys)} tensors) into '
                      'the student and the teacher', logger='current')
            for k in keys:
                v = state_dict.pop(k)
                state_dict[f'{prefix}model.{k[len(prefix):]}'] = v
                state_dict[f'{prefix}teacher.{k[len(prefix):]}'] = v
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @staticmethod
    def _build_mfm(mfm: Optional[dict]) -> Tuple[Optional[nn.Module], float]:
        """The MFM rebuilder (a trained submodule, so in the optimizer; not in the teacher, which
        is a copy of the student made before) and lambda."""
        if mfm is None:
            return None, 0.0
        mfm = dict(mfm)
        unknown = set(mfm) - {'rebuilder', 'loss_weight', 'on'}
        if unknown or 'rebuilder' not in mfm:
            raise ValueError(f'mfm needs rebuilder (and optionally loss_weight, on); got '
                             f'{sorted(mfm)}')
        if mfm.get('on', 'target') != 'target':
            raise ValueError(f"mfm: only on='target' is implemented, got {mfm['on']!r}")
        return MODELS.build(mfm['rebuilder']), float(mfm.get('loss_weight', 1.0))

    # -- helpers ---------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return self.model.decode_head.num_classes

    @property
    def ignore_index(self) -> int:
        return self.model.decode_head.ignore_index

    def _frozen(self) -> List[nn.Module]:
        return [m for m in (self.teacher, self.imnet_model) if m is not None]

    def train(self, mode: bool = True):
        """As DAFormer: the teacher follows ``mode`` (its BatchNorms normalise each target batch
        with the batch's own statistics) except that its dropout and DropPath layers never
        drop; the ImageNet model always runs in eval mode."""
        super().train(mode)
        for m in self.teacher.modules():
            if isinstance(m, nn.modules.dropout._DropoutNd) or type(m).__name__ == 'DropPath':
                m.eval()
        if self.imnet_model is not None:
            self.imnet_model.eval()
        return self

    @torch.no_grad()
    def _init_frozen_copies(self) -> None:
        """Teacher := student; ImageNet model's feature extractor := student's (first step)."""
        self.teacher.load_state_dict(self.model.state_dict())
        if self.imnet_model is not None:
            state = {k: v for k, v in self.model.state_dict().items()
                     if k.startswith(('backbone.', 'neck.'))}
            self.imnet_model.load_state_dict(state, strict=False)

    @torch.no_grad()
    def update_teacher(self, step: int) -> None:
        """``teacher = a * teacher + (1 - a) * student`` over the parameters,
        ``a = ema_alpha(step, alpha)``. Buffers are not averaged (DAFormer): the teacher's
        BatchNorms use batch statistics in training."""
        a = ema_alpha(step, self.alpha)
        for t, s in zip(self.teacher.parameters(), self.model.parameters()):
            t.mul_(a).add_(s.detach(), alpha=1 - a)
        self.ema_step.fill_(step)

    def _catch_up_teacher(self) -> None:
        """Bring the teacher to the current student before using it (DAFormer's placement: the
        update of step ``t`` happens at the start of iteration ``t``). A no-op after
        ``train_step``, which updates right after the optimizer step."""
        step = int(self.local_iter)
        if step == 0:
            self._init_frozen_copies()
        elif int(self.ema_step) < step:
            self.update_teacher(step)

    def frozen_parameters(self) -> List[nn.Parameter]:
        """Parameters of the teacher and the ImageNet model (never optimised)."""
        return [p for m in self._frozen() for p in m.parameters()]

    def _prune_frozen_params(self, optim_wrapper: OptimWrapper) -> None:
        """Fallback when the optimizer was not built by ``mmmask.UDAOptimWrapperConstructor``:
        remove the frozen parameters at the first step (resuming such a run fails, as the saved
        optimizer then has fewer parameters than a freshly built one)."""
        optimizer = optim_wrapper.optimizer
        if id(optimizer) in self._pruned_optimizers:
            return
        if _drop_params(optimizer, self.frozen_parameters()):
            print_log("DACS: removed the teacher's parameters from the optimizer; build it with "
                      "optim_wrapper=dict(constructor='mmmask.UDAOptimWrapperConstructor') so "
                      'that runs can be resumed', logger='current', level=30)
        self._pruned_optimizers.add(id(optimizer))

    def _heads(self) -> List[nn.Module]:
        heads = [self.model.decode_head]
        if getattr(self.model, 'with_auxiliary_head', False):
            aux = self.model.auxiliary_head
            heads += list(aux) if isinstance(aux, nn.ModuleList) else [aux]
        return heads

    def _student_losses(self, inputs: Tensor, data_samples: List[SegDataSample],
                        pixel_weight: Optional[Tensor] = None) -> Tuple[Dict, List[Tensor]]:
        """The student's training losses (EncoderDecoder.loss, with optional pixel weights) and
        its features."""
        feats = self.model.extract_feat(inputs)
        losses = {}
        with _pixel_weight(self._heads(), pixel_weight):
            losses.update(self.model._decode_head_forward_train(feats, data_samples))
            if getattr(self.model, 'with_auxiliary_head', False):
                losses.update(self.model._auxiliary_head_forward_train(feats, data_samples))
        return losses, feats

    def _mean_std(self) -> Tuple[Tensor, Tensor]:
        pre = self.data_preprocessor
        if getattr(pre, '_enable_normalize', False):
            return pre.mean.view(1, -1, 1, 1), pre.std.view(1, -1, 1, 1)
        dev = self.local_iter.device
        return torch.zeros(1, 3, 1, 1, device=dev), torch.ones(1, 3, 1, 1, device=dev) / 255

    def feature_distance(self, inputs: Tensor, gt: Tensor, feats: Sequence[Tensor]) -> Tensor:
        """``lambda * mean_p ||f_student(p) - f_imnet(p)||_2`` on the last feature level, over the
        cells dominated (>= scale_min_ratio) by ``imnet_feature_dist_classes`` if given."""
        with torch.no_grad():
            imnet = self.imnet_model.extract_feat(inputs)[-1].detach()
        feat = feats[-1]
        dist = torch.norm(feat - imnet, dim=1, p=2)  # (B, h, w)
        if self.fdist_classes is not None:
            scale = gt.shape[-1] // feat.shape[-1]
            small = downscale_label_ratio(gt, scale, self.fdist_scale_min_ratio, self.num_classes,
                                          self.ignore_index)
            small = small[..., :feat.shape[-2], :feat.shape[-1]]
            classes = torch.tensor(self.fdist_classes, device=gt.device)
            mask = torch.isin(small[:, 0], classes)
            if not mask.any():  # DAFormer's mean over nothing would be NaN
                return feat.sum() * 0.0
            dist = dist[mask]
        return self.fdist_lambda * dist.mean()

    # -- training ----------------------------------------------------------------------------
    def loss(self, inputs: Tensor, data_samples: List[SegDataSample],
             target_inputs: Optional[Tensor] = None,
             target_data_samples: Optional[List[SegDataSample]] = None) -> Dict[str, Tensor]:
        """Source supervised losses, the optional feature distance (``src.``) and the losses on
        the class-mixed images against mixed labels weighted by pseudo-label confidence
        (``mix.``), and with ``mfm`` the Masked Feature Modeling losses on the target images
        (``mfm.``). Their sum has the gradient of DAFormer's separate backward passes."""
        if target_inputs is None:
            raise ValueError('DACS.loss needs target_inputs: train it on mmmask.UDADataset '
                             'batches (inputs, data_samples, target_inputs, target_data_samples)')
        if target_inputs.shape[-2:] != inputs.shape[-2:]:
            raise ValueError(f'source {tuple(inputs.shape[-2:])} and target '
                             f'{tuple(target_inputs.shape[-2:])} crops must have the same size')
        self._catch_up_teacher()
        losses = {}
        # source
        src_losses, src_feats = self._student_losses(inputs, data_samples)
        losses.update(src_losses)
        gt = torch.stack([s.gt_sem_seg.data for s in data_samples]).long()  # (B, 1, H, W)
        if self.imnet_model is not None:
            losses['src.loss_imnet_feat_dist'] = self.feature_distance(inputs, gt, src_feats)
        # target pseudo-labels from the teacher
        size = tuple(target_inputs.shape[-2:])
        metas = [dict(img_shape=size, pad_shape=size, ori_shape=size)] * len(target_inputs)
        with torch.no_grad():
            probs = torch.softmax(self.teacher.encode_decode(target_inputs, metas).detach(), 1)
            pseudo, pweight = pseudo_label_weight(probs, self.pseudo_threshold,
                                                  self.psweight_ignore_top,
                                                  self.psweight_ignore_bottom)
            # target padding (crops smaller than the batch size) gets no pseudo-label
            for b, sample in enumerate(target_data_samples or []):
                h, w = sample.metainfo.get('img_shape', size)[:2]
                pseudo[b, h:, :] = self.ignore_index
                pseudo[b, :, w:] = self.ignore_index
                pweight[b, h:, :] = 0
                pweight[b, :, w:] = 0
            # class mix + strong augmentation
            mask = class_mix_masks(gt[:, 0], self.ignore_index).to(inputs.dtype)
            mean, std = self._mean_std()
            jitter = random.uniform(0, 1)
            blur = random.uniform(0, 1) if self.blur else 0.0
            m4 = mask[:, None]
            mixed = m4 * inputs + (1 - m4) * target_inputs
            mixed = torch.cat([
                strong_transform(img[None], mean, std, jitter, self.color_jitter_strength,
                                 self.color_jitter_probability, blur) for img in mixed])
            mixed_lbl = torch.where(mask.bool(), gt[:, 0], pseudo)
            mixed_w = mask + (1 - mask) * pweight
        if self.mfm_rebuilder is not None:
            losses.update(self.mfm_loss(target_inputs, pseudo, pweight, target_data_samples))
        mixed_samples = []
        for sample, lbl in zip(data_samples, mixed_lbl):
            new = SegDataSample(metainfo=sample.metainfo)
            new.gt_sem_seg = PixelData(data=lbl[None])
            mixed_samples.append(new)
        mix_losses, _ = self._student_losses(mixed, mixed_samples, pixel_weight=mixed_w)
        losses.update({f'mix.{k}': v for k, v in mix_losses.items()})
        losses['mix.pseudo_weight'] = pweight.new_tensor(float(pweight.max()))
        self.local_iter += 1
        return losses

    def mfm_loss(self, target_inputs: Tensor, pseudo: Tensor, pweight: Tensor,
                 target_data_samples: Optional[List[SegDataSample]] = None) -> Dict[str, Tensor]:
        """Masked Feature Modeling: the student's decode head on the rebuilt masked features of
        the target images, against the teacher's pseudo-labels ``(B, H, W)`` weighted by
        ``pweight`` ``(B, H, W)``; the losses (``mfm.decode.loss_*``) are scaled by lambda."""
        feats = self.model.extract_feat(target_inputs)
        rebuilt = self.mfm_rebuilder(list(feats))
        size = tuple(target_inputs.shape[-2:])
        samples = []
        for b, lbl in enumerate(pseudo):
            meta = dict(img_shape=size, pad_shape=size, ori_shape=size)
            if target_data_samples:
                meta.update(target_data_samples[b].metainfo)
            sample = SegDataSample(metainfo=meta)
            sample.gt_sem_seg = PixelData(data=lbl[None])
            samples.append(sample)
        with _pixel_weight([self.model.decode_head], pweight):
            mfm_losses = self.model._decode_head_forward_train(rebuilt, samples)
        return {f'mfm.{k}': v * self.mfm_lambda if 'loss' in k else v
                for k, v in mfm_losses.items()}

    def train_step(self, data: dict, optim_wrapper: OptimWrapper) -> Dict[str, Tensor]:
        """Preprocess both domains, one backward of the summed losses, optimizer step, then the
        EMA teacher update for the new student."""
        self._prune_frozen_params(optim_wrapper)
        with optim_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            losses = self._run_forward(data, mode='loss')
        parsed, log_vars = self.parse_losses(losses)
        optim_wrapper.update_params(parsed)
        self.update_teacher(int(self.local_iter))
        return log_vars

    # -- inference: the student --------------------------------------------------------------
    def forward(self, inputs: Tensor, data_samples=None, mode: str = 'tensor', **kwargs):
        if mode == 'loss':
            return self.loss(inputs, data_samples, **kwargs)
        return super().forward(inputs, data_samples, mode)

    def extract_feat(self, inputs: Tensor):
        return self.model.extract_feat(inputs)

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        return self.model.encode_decode(inputs, batch_img_metas)

    def predict(self, inputs: Tensor, data_samples=None):
        return self.model.predict(inputs, data_samples)

    def _forward(self, inputs: Tensor, data_samples=None):
        return self.model._forward(inputs, data_samples)
