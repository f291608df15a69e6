"""ViT-P two-stage inference: a frozen Mask2Former-style model proposes masks, the ViT-P point
classifier re-classifies each mask from one point, and the two class distributions are fused.

``p ∝ softmax(stage-1 logits without void)^(1-α) · softmax(ViT-P)^α`` (α = 0.4), then
``[p·(1 - p_void), p_void]`` with the stage-1 void probability; the log of that feeds the usual
semantic (mmseg) or panoptic/instance (mmdet) inference unchanged.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.runner import load_checkpoint
from mmdet.models.detectors import BaseDetector
from mmseg.models.segmentors import BaseSegmentor

from mmmask.registry import MODELS


def vitp_fuse(mask_cls: torch.Tensor, point_logits: torch.Tensor, alpha: float = 0.4,
              eps: float = 1e-8) -> torch.Tensor:
    """Fuse ``(..., K+1)`` stage-1 class logits (void last) with ``(..., K)`` ViT-P logits.

    Returns ``(..., K+1)`` log-probabilities: softmax of them gives back the fused probabilities,
    so any Mask2Former post-processing that softmaxes class logits can consume them as logits.
    """
    if mask_cls.shape[:-1] != point_logits.shape[:-1] or \
            mask_cls.shape[-1] != point_logits.shape[-1] + 1:
        raise ValueError(f'stage-1 logits {tuple(mask_cls.shape)} must be the point logits '
                         f'{tuple(point_logits.shape)} plus one void class: do the classifier '
                         f'and the mask model use the same num_classes?')
    mask_cls, point_logits = mask_cls.float(), point_logits.float()
    stage1 = mask_cls[..., :-1].softmax(-1)
    points = point_logits.softmax(-1)
    fused = (stage1**(1 - alpha) * points**alpha).log().softmax(-1)
    void = mask_cls.softmax(-1)[..., -1:]
    return torch.log(torch.cat([fused * (1.0 - void), void], dim=-1) + eps)


def mask_argmax_points(mask_logits: torch.Tensor) -> torch.Tensor:
    """``(Q, h, w)`` mask logits -> ``(Q, 2)`` (row, col) in [-1, 1): each mask's argmax pixel,
    normalised by the mask size as the official fusion does (``2 * (y / h, x / w) - 1``)."""
    q, h, w = mask_logits.shape
    flat = mask_logits.reshape(q, -1).argmax(dim=1)
    rows = torch.div(flat, w, rounding_mode='floor')
    cols = flat - rows * w
    return torch.stack([rows / float(h), cols / float(w)], dim=-1) * 2 - 1


def _preprocessor_stats(pre: nn.Module) -> Tuple[torch.Tensor, torch.Tensor, bool]:
    """(mean, std, converts BGR->RGB) of an mmengine/mmseg/mmdet data preprocessor."""
    mean = getattr(pre, 'mean', None)
    std = getattr(pre, 'std', None)
    if mean is None or std is None or not getattr(pre, '_enable_normalize', True):
        mean, std = torch.zeros(3, 1, 1), torch.ones(3, 1, 1)
    swap = bool(getattr(pre, 'channel_conversion', getattr(pre, '_channel_conversion', False)))
    return mean.reshape(-1, 1, 1), std.reshape(-1, 1, 1), swap


class ViTPFusionMixin:
    """Builds/loads/freezes the two stages and computes fused class logits per query."""

    def _init_vitp(self, stage1: dict, classifier: dict, stage1_checkpoint: Optional[str],
                   classifier_checkpoint: Optional[str], alpha: float,
                   classifier_size: Sequence[int], pad_seed: int,
                   label_map: Optional[Sequence[int]], data_preprocessor: Optional[dict],
                   init_cfg: Optional[dict]) -> None:
        """Shared constructor: the stage-1 model's data preprocessor unless one is given."""
        stage1 = dict(stage1)
        if data_preprocessor is None:
            data_preprocessor = stage1.get('data_preprocessor')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f'alpha must be in [0, 1] (paper: 0.4), got {alpha}')
        setattr(self, self._stage1_attr, MODELS.build(stage1))
        self.classifier = MODELS.build(classifier)
        self.stage1_checkpoint = stage1_checkpoint
        self.classifier_checkpoint = classifier_checkpoint
        self.alpha = alpha
        self.classifier_size = tuple(classifier_size)
        self.pad_seed = pad_seed
        self.label_map = None if label_map is None else [int(i) for i in label_map]
        self._load_stages()
        for module in (getattr(self, self._stage1_attr), self.classifier):
            module.requires_grad_(False)
            module.eval()

    def _load_stages(self, init_missing: bool = False) -> None:
        for module, path in ((getattr(self, self._stage1_attr), self.stage1_checkpoint),
                             (self.classifier, self.classifier_checkpoint)):
            if path:
                load_checkpoint(module, path, map_location='cpu', strict=False)
            elif init_missing:
                module.init_weights()

    def init_weights(self) -> None:
        """Each stage loads its checkpoint, or initialises itself when it has none."""
        self._load_stages(init_missing=True)

    def train(self, mode: bool = True):
        """Both stages stay in eval mode: ViT-P trains them separately."""
        super().train(mode)
        getattr(self, self._stage1_attr).eval()
        self.classifier.eval()
        return self

    def _classifier_images(self, inputs: torch.Tensor, metas: List[dict]) -> torch.Tensor:
        """Each image's valid (unpadded) region, re-normalised for the classifier and resized to
        ``classifier_size`` (the official code squashes the padded batch instead; see README)."""
        mean1, std1, swap1 = _preprocessor_stats(self.data_preprocessor)
        mean2, std2, swap2 = _preprocessor_stats(self.classifier.data_preprocessor)
        dev = inputs.device
        out = []
        for img, meta in zip(inputs, metas):
            h, w = meta['img_shape'][:2]
            raw = img[:, :h, :w].float() * std1.to(dev) + mean1.to(dev)
            if swap1 != swap2:
                raw = raw.flip(0)
            norm = (raw - mean2.to(dev)) / std2.to(dev)
            out.append(F.interpolate(norm[None], size=self.classifier_size, mode='bilinear',
                                     align_corners=False, antialias=True))
        return torch.cat(out)

    @torch.no_grad()
    def point_logits(self, inputs: torch.Tensor, mask_logits: torch.Tensor,
                     metas: List[dict]) -> torch.Tensor:
        """``(B, Q, K)`` ViT-P logits of every query's argmax point, P points per forward.

        The last chunk of each image is padded to P points with uniform random points drawn from
        a generator seeded with ``pad_seed`` (the official code draws them from the global RNG):
        the same image always gets the same answer.
        """
        images = self._classifier_images(inputs, metas)
        per_chunk = self.classifier.num_points
        gen = torch.Generator().manual_seed(self.pad_seed)
        results = []
        for img, masks, meta in zip(images, mask_logits, metas):
            h, w = meta['img_shape'][:2]
            pts = mask_argmax_points(masks[:, :h, :w])
            q = pts.shape[0]
            n_chunks = -(-q // per_chunk)
            pad = n_chunks * per_chunk - q
            if pad:
                extra = torch.rand(pad, 2, generator=gen).to(pts) * 2 - 1
                pts = torch.cat([pts, extra])
            chunks = pts.reshape(n_chunks, per_chunk, 2)
            logits = self.classifier.point_logits(img[None].expand(n_chunks, -1, -1, -1), chunks)
            results.append(logits.reshape(-1, logits.shape[-1])[:q])
        logits = torch.stack(results)
        return logits if self.label_map is None else logits[..., self.label_map]

    def fuse(self, inputs: torch.Tensor, mask_cls: torch.Tensor, mask_logits: torch.Tensor,
             metas: List[dict]) -> torch.Tensor:
        """Fused ``(B, Q, K+1)`` class log-probabilities (plain stage 1 when alpha is 0)."""
        if self.alpha == 0:
            return mask_cls
        return vitp_fuse(mask_cls, self.point_logits(inputs, mask_logits, metas), self.alpha)

    def loss(self, *args, **kwargs):
        raise RuntimeError(
            'ViT-P fusion models are test-only: train the mask model with its own config and the '
            'point classifier with a configs/vitp/*_points config, then point stage1_checkpoint / '
            'classifier_checkpoint at the results')


@MODELS.register_module()
class ViTPSegmentor(ViTPFusionMixin, BaseSegmentor):
    """Semantic segmentation with ViT-P fusion over an mmseg Mask2Former-style segmentor.

    Args:
        segmentor: the frozen stage-1 model (an mmseg ``EncoderDecoder`` whose decode head is
            ``Mask2FormerHead``, ``mmmask.PEMSegHead`` or any head returning per-layer
            ``(class logits, mask logits)``).
        classifier: a ``mmmask.ViTPPointClassifier`` config with the same ``num_classes``.
        segmentor_checkpoint / classifier_checkpoint: weights loaded into each stage.
        alpha: weight of the ViT-P distribution (paper: 0.4; 0 gives the stage-1 result).
        classifier_size: (h, w) the classifier sees (ADE20K 518x518, Cityscapes 518x1036).
        pad_seed: seed of the padding points of the last chunk.
        label_map: for each stage-1 class, the classifier's index of that class, when the two
            models order their classes differently (e.g. mmdet's things-then-stuff panoptic order
            against a classifier trained on the semantic maps).
    """
    _stage1_attr = 'segmentor'

    def __init__(self,
                 segmentor: dict,
                 classifier: dict,
                 segmentor_checkpoint: Optional[str] = None,
                 classifier_checkpoint: Optional[str] = None,
                 alpha: float = 0.4,
                 classifier_size: Sequence[int] = (518, 518),
                 pad_seed: int = 0,
                 label_map: Optional[Sequence[int]] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        self._init_vitp(segmentor, classifier, segmentor_checkpoint, classifier_checkpoint,
                        alpha, classifier_size, pad_seed, label_map, data_preprocessor, init_cfg)
        if getattr(self.segmentor, 'test_cfg', None) and \
                self.segmentor.test_cfg.get('mode', 'whole') != 'whole':
            raise ValueError("ViTPSegmentor supports the stage-1 test_cfg mode='whole' only")

    def extract_feat(self, inputs: torch.Tensor):
        return self.segmentor.extract_feat(inputs)

    def encode_decode(self, inputs: torch.Tensor, batch_img_metas: List[dict]) -> torch.Tensor:
        """Fused semantic logits ``(B, K, H, W)`` at the (padded) input size."""
        from mmseg.structures import SegDataSample
        samples = [SegDataSample(metainfo=m) for m in batch_img_metas]
        all_cls, all_masks = self.segmentor.decode_head(self.extract_feat(inputs), samples)
        size = batch_img_metas[0].get('pad_shape', batch_img_metas[0]['img_shape'])[:2]
        masks = F.interpolate(all_masks[-1], size=size, mode='bilinear', align_corners=False)
        fused = self.fuse(inputs, all_cls[-1], masks, batch_img_metas)
        cls_score = fused.softmax(-1)[..., :-1]
        return torch.einsum('bqc,bqhw->bchw', cls_score, masks.sigmoid())

    def predict(self, inputs: torch.Tensor, data_samples: Optional[list] = None) -> list:
        if data_samples is None:
            metas = [dict(ori_shape=inputs.shape[2:], img_shape=inputs.shape[2:],
                          pad_shape=inputs.shape[2:], padding_size=[0, 0, 0, 0])] * inputs.shape[0]
        else:
            metas = [ds.metainfo for ds in data_samples]
        seg_logits = self.encode_decode(inputs, metas)
        return self.segmentor.postprocess_result(seg_logits, data_samples)

    def _forward(self, inputs: torch.Tensor, data_samples: Optional[list] = None) -> torch.Tensor:
        metas = [ds.metainfo for ds in data_samples] if data_samples else \
            [dict(img_shape=inputs.shape[2:], pad_shape=inputs.shape[2:])] * inputs.shape[0]
        return self.encode_decode(inputs, metas)


@MODELS.register_module()
class ViTPPanopticSegmentor(ViTPFusionMixin, BaseDetector):
    """Panoptic/instance segmentation with ViT-P fusion over an mmdet ``MaskFormer``/``Mask2Former``
    (or ``mmmask.PEMHead``) detector; arguments as :class:`ViTPSegmentor` with ``detector``."""
    _stage1_attr = 'detector'

    def __init__(self,
                 detector: dict,
                 classifier: dict,
                 detector_checkpoint: Optional[str] = None,
                 classifier_checkpoint: Optional[str] = None,
                 alpha: float = 0.4,
                 classifier_size: Sequence[int] = (518, 518),
                 pad_seed: int = 0,
                 label_map: Optional[Sequence[int]] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        self._init_vitp(detector, classifier, detector_checkpoint, classifier_checkpoint,
                        alpha, classifier_size, pad_seed, label_map, data_preprocessor, init_cfg)

    def extract_feat(self, batch_inputs: torch.Tensor):
        return self.detector.extract_feat(batch_inputs)

    def predict(self, batch_inputs: torch.Tensor, batch_data_samples: list,
                rescale: bool = True) -> list:
        det = self.detector
        mask_cls, mask_pred = det.panoptic_head.predict(self.extract_feat(batch_inputs),
                                                        batch_data_samples)
        metas = [ds.metainfo for ds in batch_data_samples]
        fused = self.fuse(batch_inputs, mask_cls, mask_pred, metas)
        results = det.panoptic_fusion_head.predict(fused, mask_pred, batch_data_samples,
                                                   rescale=rescale)
        return det.add_pred_to_datasample(batch_data_samples, results)

    def _forward(self, batch_inputs: torch.Tensor, batch_data_samples: Optional[list] = None):
        return self.detector._forward(batch_inputs, batch_data_samples)
