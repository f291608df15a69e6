"""MCL — Multistage Contrastive Learning (Zhang et al., "Learning the Unlearned: Mitigating Feature
Suppression in Contrastive Learning", ECCV 2024, arXiv 2402.11816, github.com/MajorDavidZhang/MCL).

MCL wraps a contrastive algorithm (SimCLR, MoCo, ... of mmpretrain) and trains it in stages. Stage 0
is plain contrastive learning; after each stage the train set is clustered on the stage's
L2-normalised embeddings and the next stage draws every batch from one pseudo-label cluster
("feature-aware negative sampling", ``mmmask.ClusterBatchSampler``, driven by
``mmmask.MCLStageHook``). The finished stage's encoder is kept frozen, and the final representation
concatenates the encoders of all stages ("cross-stage representation integration", paper §4).

This module holds the model side: the trainable algorithm, the frozen encoders of the finished
stages (part of the state dict, so checkpoints and ``--resume`` carry the stage state), the
concatenating :meth:`MCL.extract_feat` and the clustering embedding :meth:`MCL.cluster_feat`.
:class:`MCLStagesBackbone` is the same concatenation as a classification backbone (transfer).
"""
import copy
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel, BaseModule
from mmengine.registry import DefaultScope
from torch import Tensor, nn

from mmmask.evaluation.knn import pool_features
from mmmask.registry import MODELS

__all__ = ['MCL', 'MCLStagesBackbone', 'concat_stage_features', 'mcl_stage_state_dicts']


def _last(out) -> Tensor:
    return out[-1] if isinstance(out, (tuple, list)) else out


def concat_stage_features(outputs: Sequence, normalize: bool = False) -> Tuple[Tensor]:
    """Concatenate the last output of every stage encoder along the feature axis.

    ``[B, C, H, W]`` maps join on channels (dim 1), ``[B, D]`` vectors and ``[B, N, D]`` token
    sequences on the last dim. ``normalize=True`` L2-normalises each stage's features on that axis
    first (equal weight per stage); the paper concatenates the raw features (default).
    """
    feats = [_last(o) for o in outputs]
    shapes = {tuple(f.shape[:1]) + tuple(f.shape[2:] if f.dim() == 4 else f.shape[1:-1])
              for f in feats}
    if len(shapes) != 1:
        raise ValueError('stage encoders must give features of the same batch/spatial shape to be '
                         f'concatenated, got {[tuple(f.shape) for f in feats]}')
    dim = 1 if feats[0].dim() == 4 else -1
    if normalize:
        feats = [F.normalize(f, dim=dim) for f in feats]
    return (torch.cat(feats, dim=dim), )


def _frozen_copy(module: nn.Module) -> nn.Module:
    frozen = copy.deepcopy(module)
    frozen.requires_grad_(False)
    frozen.eval()
    return frozen


@MODELS.register_module()
class MCL(BaseModel):
    """Multistage wrapper of a contrastive algorithm (paper Alg. 1).

    Args:
        algorithm: config of the contrastive algorithm (e.g. ``dict(type='SimCLR', backbone=...,
            neck=..., head=...)``), built in ``scope`` (``mmpretrain`` by default). Its
            ``backbone`` is the stage encoder; ``neck`` gives the contrastive embedding.
        cluster_feature: embedding clustered at a stage end: ``'neck'`` (default; the projected
            embedding that enters the contrastive loss, as the official ``encode_image`` output
            of CLIP) or ``'backbone'`` (mean-pooled encoder features). Always L2-normalised
            (official ``cluster.py`` L56).
        normalize_stages: L2-normalise each stage's features before concatenation (off: the
            paper's plain concatenation).
        data_preprocessor: used when ``algorithm`` has none; the wrapper shares the algorithm's.
        scope: registry scope the algorithm config is built in.
    """

    def __init__(self, algorithm: dict, cluster_feature: str = 'neck',
                 normalize_stages: bool = False, data_preprocessor: Optional[dict] = None,
                 scope: str = 'mmpretrain', init_cfg: Optional[Union[dict, List[dict]]] = None):
        if cluster_feature not in ('neck', 'backbone'):
            raise ValueError(f"cluster_feature must be 'neck' or 'backbone', got "
                             f'{cluster_feature!r}')
        if not isinstance(algorithm, dict) or 'type' not in algorithm:
            raise TypeError('MCL needs `algorithm=dict(type=...)`: the config of a contrastive '
                            'algorithm such as SimCLR or MoCo')
        super().__init__(init_cfg=init_cfg)
        algorithm = copy.deepcopy(algorithm)
        if data_preprocessor is not None:
            algorithm.setdefault('data_preprocessor', data_preprocessor)
        self._algorithm_cfg, self._scope = algorithm, scope
        self.algorithm = self._build_algorithm()
        for part in ('backbone', 'neck'):
            if not isinstance(getattr(self.algorithm, part, None), nn.Module):
                raise TypeError(f'MCL wraps algorithms with a `{part}` module (SimCLR, MoCo, '
                                f'BYOL, ...); {type(self.algorithm).__name__} has none')
        self.data_preprocessor = self.algorithm.data_preprocessor
        self.cluster_feature, self.normalize_stages = cluster_feature, normalize_stages
        #: frozen encoders of the finished stages (stage s at index s)
        self.stage_backbones = nn.ModuleList()
        self.register_buffer('stage', torch.zeros((), dtype=torch.long))

    def _build_algorithm(self) -> nn.Module:
        with DefaultScope.overwrite_default_scope(self._scope):
            return MODELS.build(copy.deepcopy(self._algorithm_cfg))

    # ----------------------------------------------------------------- stages
    @property
    def num_finished(self) -> int:
        """Finished (frozen) stages; the algorithm trains stage ``num_finished``."""
        return len(self.stage_backbones)

    def finish_stage(self, reinit: bool = True) -> None:
        """Freeze a copy of the current encoder as the finished stage and start the next one.

        ``reinit=True``: the algorithm restarts from a freshly built-and-initialised copy of its
        config (parameters keep their identity, so the optimizer still holds them; buffers such as
        BN statistics or a MoCo queue are reset too) — each official stage restarts from the same
        initial weights (``--pretrained openai``). ``reinit=False`` continues from the current
        weights.
        """
        self.stage_backbones.append(_frozen_copy(self.algorithm.backbone))
        self.stage += 1
        if reinit:
            fresh = self._build_algorithm()
            fresh.init_weights()
            fresh.to(self.stage.device)
            self.algorithm.load_state_dict(fresh.state_dict())

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # resume: create the frozen stage encoders the checkpoint has before they are loaded
        pattern = re.compile(re.escape(prefix) + r'stage_backbones\.(\d+)\.')
        ids = {int(m.group(1)) for k in state_dict for m in [pattern.match(k)] if m}
        while len(self.stage_backbones) < (max(ids) + 1 if ids else 0):
            self.stage_backbones.append(_frozen_copy(self.algorithm.backbone))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        if int(state_dict.get(prefix + 'stage', self.stage)) != len(self.stage_backbones):
            error_msgs.append(f'MCL checkpoint: stage {int(state_dict[prefix + "stage"])} but '
                              f'{len(self.stage_backbones)} frozen stage encoders')

    def train(self, mode: bool = True) -> 'MCL':
        super().train(mode)
        self.stage_backbones.eval()  # finished stages stay frozen (BN statistics included)
        return self

    # ------------------------------------------------------------- features
    def encoders(self) -> List[nn.Module]:
        """Encoders of stages ``0..num_finished`` (the last one is the trainable one)."""
        return list(self.stage_backbones) + [self.algorithm.backbone]

    def extract_feat(self, inputs: Tensor, stages: Optional[Sequence[int]] = None,
                     **kwargs) -> Tuple[Tensor]:
        """Cross-stage representation: the stage encoders' features concatenated (paper §4).

        ``stages``: which stages to use (default: all, ``0..num_finished``).
        """
        encoders = self.encoders()
        stages = range(len(encoders)) if stages is None else stages
        bad = [s for s in stages if not 0 <= s < len(encoders)]
        if bad or not stages:
            raise IndexError(f'stages {list(stages)} not available: the model has stages '
                             f'0..{len(encoders) - 1}')
        return concat_stage_features([encoders[s](inputs) for s in stages], self.normalize_stages)

    @torch.no_grad()
    def cluster_feat(self, inputs: Tensor) -> Tensor:
        """L2-normalised embedding of the current stage that the stage-end k-means clusters."""
        feats = self.algorithm.backbone(inputs)
        if self.cluster_feature == 'neck':
            out = _last(self.algorithm.neck(feats))
            out = out.flatten(1) if out.dim() > 2 else out
        else:
            out = pool_features(feats, 'mean')
        return F.normalize(out.float(), dim=1)

    # ------------------------------------------------------------- training
    def loss(self, inputs, data_samples, **kwargs) -> Dict[str, Tensor]:
        """The wrapped algorithm's contrastive loss (batches come from the cluster sampler)."""
        losses = self.algorithm.loss(inputs, data_samples, **kwargs)
        losses['mcl_stage'] = self.stage.detach().float()  # logged, not optimised
        return losses

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            return self.extract_feat(inputs[0] if isinstance(inputs, list) else inputs)
        if mode == 'predict':
            return self.algorithm(inputs, data_samples, mode='predict')
        raise RuntimeError(f'Invalid mode "{mode}": use "loss", "tensor" or "predict"')


def mcl_stage_state_dicts(state_dict: Dict[str, Tensor],
                          encoder_prefix: str = 'algorithm.backbone.') -> List[Dict[str, Tensor]]:
    """Per-stage encoder weights of an :class:`MCL` checkpoint's ``state_dict``: stage ``s`` from
    ``stage_backbones.s.``, the last stage from ``encoder_prefix`` (the trainable encoder)."""
    stages: Dict[int, Dict[str, Tensor]] = {}
    for k, v in state_dict.items():
        m = re.match(r'stage_backbones\.(\d+)\.(.+)', k)
        if m:
            stages.setdefault(int(m.group(1)), {})[m.group(2)] = v
    last = {k[len(encoder_prefix):]: v for k, v in state_dict.items()
            if k.startswith(encoder_prefix)}
    if not last:
        raise KeyError(f'no `{encoder_prefix}*` keys: is this an mmmask.MCL checkpoint?')
    return [stages[s] for s in sorted(stages)] + [last]


@MODELS.register_module()
class MCLStagesBackbone(BaseModule):
    """``num_stages`` copies of ``backbone`` whose (last) outputs are concatenated: the MCL
    cross-stage representation as a classification backbone (linear probe / fine-tune).

    ``mcl_checkpoint``: an ``mmmask.MCL`` pretraining checkpoint; stage ``s`` loads its encoder
    (see :func:`mcl_stage_state_dicts`). ``frozen``: keep every stage frozen (linear probe).
    """

    def __init__(self, backbone: dict, num_stages: int, mcl_checkpoint: Optional[str] = None,
                 frozen: bool = False, normalize_stages: bool = False,
                 scope: str = 'mmpretrain', init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if num_stages < 1:
            raise ValueError(f'num_stages must be >= 1, got {num_stages}')
        with DefaultScope.overwrite_default_scope(scope):
            self.stages = nn.ModuleList(MODELS.build(copy.deepcopy(backbone))
                                        for _ in range(num_stages))
        self.checkpoint, self.frozen = mcl_checkpoint, frozen
        self.normalize_stages = normalize_stages
        if frozen:
            self.stages.requires_grad_(False)

    def init_weights(self) -> None:
        if self.checkpoint is None:
            for stage in self.stages:
                stage.init_weights()
            return
        from mmengine.runner.checkpoint import _load_checkpoint
        ckpt = _load_checkpoint(self.checkpoint, map_location='cpu')
        per_stage = mcl_stage_state_dicts(ckpt.get('state_dict', ckpt))
        if len(per_stage) != len(self.stages):
            raise ValueError(f'{self.checkpoint} has {len(per_stage)} MCL stages, the backbone '
                             f'num_stages={len(self.stages)}: set num_stages to match')
        for stage, sd in zip(self.stages, per_stage):
            stage.load_state_dict(sd, strict=True)

    def train(self, mode: bool = True) -> 'MCLStagesBackbone':
        super().train(mode)
        if self.frozen:
            self.stages.eval()
        return self

    def forward(self, x: Tensor) -> Tuple[Tensor]:
        return concat_stage_features([stage(x) for stage in self.stages], self.normalize_stages)
