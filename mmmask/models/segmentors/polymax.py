"""PolyMaX: one mask-transformer model for semantic segmentation, depth and surface normals.

Yang et al., "PolyMaX: General Dense Prediction with Mask Transformer", WACV 2024. The model is
kMaX-DeepLab's backbone and axial-attention pixel decoder, shared by any subset of the tasks,
with one cluster-prediction head (``mmmask.PolyMaX{Semantic,Depth,Normal}Head``) per task. It is an
mmseg segmentor: predictions land in ``SegDataSample.pred_sem_seg`` / ``seg_logits``,
``pred_depth_map`` and ``pred_normal_map``, which mmseg's ``IoUMetric``, ``DepthMetric`` and
``mmmask.SurfaceNormalMetric`` read.
"""
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.structures import SegDataSample
from torch import Tensor, nn

from mmmask.registry import MODELS

__all__ = ['PolyMaX']

# task name -> (data sample field holding its ground truth, pipeline step that loads it)
_GT_FIELDS = {
    'semantic': ('gt_sem_seg', "dict(type='LoadAnnotations')"),
    'depth': ('gt_depth_map', "dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3)"),
    'normal': ('gt_normal_map', "dict(type='mmmask.LoadNormalAnnotation')"),
}


@MODELS.register_module()
class PolyMaX(BaseSegmentor):
    """Backbone -> kMaX pixel decoder -> one PolyMaX head per task.

    Args:
        backbone: backbone config returning features at strides 4, 8, 16, 32
            (e.g. ``mmpretrain.ConvNeXt`` with ``out_indices=(0, 1, 2, 3)``).
        pixel_decoder: ``mmmask.KMaXPixelDecoder`` config (``in_channels`` = backbone channels).
        heads: task name (``'semantic'``, ``'depth'``, ``'normal'``) -> head config. Any
            non-empty subset gives the single-task or the multi-task model; a task set to None is
            dropped (so a single-task config can inherit the multi-task one).
        task_weights: optional task name -> multiplier of that task's losses.
        data_preprocessor: defaults to ``mmmask.DenseDataPreprocessor`` with kMaX's [-1, 1]
            input normalisation.
        align_corners: bilinear resizing convention of the post-processing.
    """

    def __init__(self, backbone: dict, pixel_decoder: dict, heads: Dict[str, dict],
                 task_weights: Optional[Dict[str, float]] = None,
                 data_preprocessor: Optional[dict] = None, train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, align_corners: bool = False,
                 init_cfg=None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='mmmask.DenseDataPreprocessor', mean=[127.5] * 3,
                                     std=[127.5] * 3, bgr_to_rgb=True, pad_val=0, seg_pad_val=255)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        heads = {task: cfg for task, cfg in (heads or {}).items() if cfg is not None}
        if not heads:
            raise ValueError("PolyMaX needs at least one head, e.g. heads=dict(semantic=dict("
                             "type='mmmask.PolyMaXSemanticHead', ...))")
        unknown = set(heads) - set(_GT_FIELDS)
        if unknown:
            raise ValueError(f'unknown PolyMaX task(s) {sorted(unknown)}; the tasks are '
                             f'{sorted(_GT_FIELDS)}')
        task_weights = dict(task_weights or {})
        if set(task_weights) - set(heads):
            raise ValueError(f'task_weights names tasks without a head: '
                             f'{sorted(set(task_weights) - set(heads))}')
        self.backbone = MODELS.build(backbone)
        self.pixel_decoder = MODELS.build(pixel_decoder)
        self.heads = nn.ModuleDict({task: MODELS.build(cfg) for task, cfg in heads.items()})
        self.task_weights = {task: float(task_weights.get(task, 1.0)) for task in heads}
        self.train_cfg, self.test_cfg = train_cfg, test_cfg
        self.align_corners = align_corners

    @property
    def tasks(self) -> List[str]:
        return list(self.heads)

    # -- forward pieces ------------------------------------------------------------------------
    def extract_feat(self, inputs: Tensor):
        """Backbone + pixel decoder: ([OS32, OS16, OS8], OS4, [res5, res3, res2])."""
        feats = self.backbone(inputs)
        if len(feats) != 4:
            raise ValueError(f'the PolyMaX backbone must return 4 feature maps (strides 4-32); got '
                             f'{len(feats)}: set out_indices=(0, 1, 2, 3)')
        return self.pixel_decoder(feats)

    def _heads_forward(self, inputs: Tensor) -> Dict[str, Dict]:
        multi_scale, os4, semantic_feats = self.extract_feat(inputs)
        return {task: head(multi_scale, os4, semantic_feats) for task, head in self.heads.items()}

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Dict[str, Tensor]:
        """Per-task dense maps at the (padded) input size: semantic class scores (B, N, H, W),
        depth (B, 1, H, W), normals (B, 3, H, W)."""
        size = inputs.shape[-2:]
        outputs = self._heads_forward(inputs)
        return {task: self.heads[task].predict(out, size) for task, out in outputs.items()}

    def _forward(self, inputs: Tensor, data_samples=None) -> Dict[str, Dict]:
        """Raw decoder outputs of every task (``mode='tensor'``)."""
        return self._heads_forward(inputs)

    # -- training ------------------------------------------------------------------------------
    def _stack_gt(self, task: str, data_samples) -> Tensor:
        field, loader = _GT_FIELDS[task]
        missing = [i for i, s in enumerate(data_samples) if field not in s]
        if missing:
            raise ValueError(f'PolyMaX task {task!r} needs {field} in every data sample (missing in '
                             f'batch items {missing}): add {loader} to the training pipeline and '
                             f'pack it with mmmask.PackDenseInputs')
        gt = torch.stack([getattr(s, field).data for s in data_samples])
        return gt[:, 0].long() if task == 'semantic' else gt.float()

    def loss(self, inputs: Tensor, data_samples) -> Dict[str, Tensor]:
        outputs = self._heads_forward(inputs)
        losses = {}
        for task, out in outputs.items():
            gt = self._stack_gt(task, data_samples).to(inputs.device)
            weight = self.task_weights[task]
            for name, value in self.heads[task].loss(out, gt).items():
                losses[f'{task}.{name}'] = value * weight if weight != 1.0 else value
        return losses

    # -- inference -----------------------------------------------------------------------------
    def predict(self, inputs: Tensor, data_samples=None):
        if data_samples is None:
            data_samples = [SegDataSample(metainfo=dict(ori_shape=inputs.shape[-2:]))
                            for _ in range(inputs.shape[0])]
        maps = self.encode_decode(inputs, [s.metainfo for s in data_samples])
        return self.postprocess_result(maps, data_samples)

    def postprocess_result(self, maps: Dict[str, Tensor], data_samples):
        """Remove padding, undo flips (negating the flipped normal component) and resize each
        task's map to ``ori_shape``; write the mmseg prediction fields."""
        for i, sample in enumerate(data_samples):
            meta = sample.metainfo
            pad = meta.get('img_padding_size', meta.get('padding_size', [0] * 4))
            left, right, top, bottom = pad
            flip = meta.get('flip', False)
            direction = meta.get('flip_direction', None)
            ori_shape = tuple(meta.get('ori_shape', maps[self.tasks[0]].shape[-2:]))[:2]
            for task, batch_map in maps.items():
                x = batch_map[i:i + 1]
                x = x[..., top:x.shape[-2] - bottom, left:x.shape[-1] - right]
                if flip:
                    if direction not in ('horizontal', 'vertical'):
                        raise ValueError(f'unsupported flip_direction {direction!r}')
                    x = x.flip(dims=(3, ) if direction == 'horizontal' else (2, ))
                    if task == 'normal':  # a mirrored image mirrors the normal's x (or y)
                        axis = 0 if direction == 'horizontal' else 1
                        x = x.clone()
                        x[:, axis] = -x[:, axis]
                if tuple(x.shape[-2:]) != ori_shape:
                    x = F.interpolate(x, size=ori_shape, mode='bilinear',
                                      align_corners=self.align_corners)
                x = x[0]
                if task == 'semantic':
                    sample.set_data(dict(seg_logits=PixelData(data=x),
                                         pred_sem_seg=PixelData(data=x.argmax(0, keepdim=True))))
                elif task == 'depth':
                    sample.set_data(dict(pred_depth_map=PixelData(data=x)))
                else:
                    sample.set_data(dict(pred_normal_map=PixelData(data=F.normalize(x, dim=0,
                                                                                    eps=1e-6))))
        return data_samples
