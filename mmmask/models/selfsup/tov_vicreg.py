"""VICReg and TOV-VICReg.

- VICReg: Bardes, Ponce & LeCun, "VICReg: Variance-Invariance-Covariance Regularization for
  Self-Supervised Learning", ICLR 2022 (arXiv 2105.04906). mmpretrain ships no VICReg.
- TOV-VICReg: Goulão & Oliveira, "Pretraining the Vision Transformer using self-supervised methods
  for vision based Deep Reinforcement Learning", ECAI 2023 (arXiv 2209.10901); official code
  github.com/mgoulao/TOV-VICReg (``tov_vicreg/models/builder.py``).

TOV-VICReg = VICReg on two augmented views x, y of frame t, plus *temporal order verification*: the
backbone representations of (t, t−1, t+1) are concatenated in one of the six orders and a linear
head says whether the order is the reference one (binary cross-entropy). The backbone is a DINO
ViT whose output is the cls token after the final LayerNorm; inputs off the ViT's training grid
get DINO's bicubic position-embedding interpolation (``+0.1`` scale-factor trick).
"""
import itertools
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.backbones import VisionTransformer
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.models.utils import resize_pos_embed
from torch import Tensor, nn

from mmmask.registry import MODELS
from .gmml import dino_resize_pos_embed

__all__ = ['VICRegLoss', 'VICRegProjector', 'VICReg', 'TemporalOrderHead', 'TOVVICReg',
           'off_diagonal', 'parse_mlp_spec', 'dino_vit_tokens', 'dino_vit_init',
           'TEMPORAL_ORDERS']

#: The six orders of the (t, t−1, t+1) stack, index = order label (builder.py L19-24); 0 is the
#: reference order (t, t−1, t+1) itself.
TEMPORAL_ORDERS = tuple(itertools.permutations(range(3)))


def off_diagonal(x: Tensor) -> Tensor:
    """The off-diagonal entries of a square matrix, flattened (VICReg / Barlow Twins)."""
    n, m = x.shape
    if n != m:
        raise ValueError(f'off_diagonal needs a square matrix, got {n}x{m}')
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def parse_mlp_spec(mlp: Union[str, Sequence[int]]) -> List[int]:
    """``'1024-1024-1024'`` (the official ``--mlp`` string) or a list of ints → list of widths."""
    if isinstance(mlp, str):
        try:
            widths = [int(v) for v in mlp.split('-')]
        except ValueError:
            raise ValueError(f"projector mlp spec {mlp!r} must look like '1024-1024-1024'")
    else:
        widths = [int(v) for v in mlp]
    if not widths or any(w <= 0 for w in widths):
        raise ValueError(f'projector mlp spec {mlp!r} needs at least one positive width')
    return widths


@MODELS.register_module()
class VICRegLoss(nn.Module):
    """VICReg's three terms on two batches of embeddings ``[N, E]`` (paper Eq. 1-6; official
    ``vicreg/main_vicreg.py`` and TOV-VICReg ``builder.py`` L51-63, L93-97).

    - invariance: ``mse(z1, z2)`` (mean over N·E);
    - variance: per branch, centre over the batch, ``std = sqrt(var_unbiased + eps)``,
      ``mean(relu(gamma − std)) / 2``, summed over the two branches;
    - covariance: per branch, ``C = z_cᵀ z_c / (n − 1)``, ``Σ_{i≠j} C_ij² / E``, summed.

    Args:
        sim_coeff / std_coeff / cov_coeff: the weights λ, μ, ν (official defaults 25/25/1).
        eps: added to the variance before the square root (1e-4).
        gamma: target standard deviation (1).
        batch_size: the official code divides the covariance by the *configured* batch size − 1,
            not the actual one; set it to reproduce that (the batch must then be exactly that size:
            ``drop_last=True``). None: the actual batch size.
    """

    def __init__(self, sim_coeff: float = 25.0, std_coeff: float = 25.0, cov_coeff: float = 1.0,
                 eps: float = 1e-4, gamma: float = 1.0, batch_size: Optional[int] = None):
        super().__init__()
        if batch_size is not None and batch_size < 2:
            raise ValueError(f'VICRegLoss batch_size must be >= 2 (covariance divides by '
                             f'batch_size - 1), got {batch_size}')
        self.sim_coeff, self.std_coeff, self.cov_coeff = sim_coeff, std_coeff, cov_coeff
        self.eps, self.gamma, self.batch_size = eps, gamma, batch_size

    def check_batch(self, n: int) -> None:
        if n < 2:
            raise ValueError(f'VICReg needs at least 2 samples per batch, got {n}')
        if self.batch_size is not None and n != self.batch_size:
            raise ValueError(
                f'VICRegLoss(batch_size={self.batch_size}) divides the covariance by the configured '
                f'batch size - 1 (official), but got a batch of {n}: set drop_last=True and '
                f'train_dataloader.batch_size={self.batch_size}, or batch_size=None to use the '
                'actual batch')

    def variance(self, z: Tensor) -> Tensor:
        """``mean(relu(gamma − sqrt(var + eps))) / 2`` of one branch (centred or not)."""
        std = torch.sqrt(z.var(dim=0) + self.eps)
        return torch.mean(F.relu(self.gamma - std)) / 2

    def covariance(self, z_centred: Tensor) -> Tensor:
        """``Σ_{i≠j} C_ij² / E`` with ``C = z_cᵀ z_c / (n − 1)`` of one centred branch."""
        n = self.batch_size if self.batch_size is not None else z_centred.shape[0]
        cov = (z_centred.T @ z_centred) / (n - 1)
        return off_diagonal(cov).pow(2).sum().div(z_centred.shape[1])

    def forward(self, z1: Tensor, z2: Tensor) -> Dict[str, Tensor]:
        """Returns ``loss`` (weighted sum) and the unweighted ``invariance``, ``variance``,
        ``covariance``."""
        if z1.dim() != 2 or z1.shape != z2.shape:
            raise ValueError(f'VICRegLoss needs two [N, E] embeddings of the same shape, got '
                             f'{tuple(z1.shape)} and {tuple(z2.shape)}')
        self.check_batch(z1.shape[0])
        inv = F.mse_loss(z1, z2)
        z1 = z1 - z1.mean(dim=0)
        z2 = z2 - z2.mean(dim=0)
        var = self.variance(z1) + self.variance(z2)
        cov = self.covariance(z1) + self.covariance(z2)
        loss = self.sim_coeff * inv + self.std_coeff * var + self.cov_coeff * cov
        return dict(loss=loss, invariance=inv, variance=var, covariance=cov)


@MODELS.register_module()
class VICRegProjector(BaseModule):
    """VICReg's expander (official ``Projector``): for ``mlp='a-b-c'`` and input width D,
    Linear(D,a)+BN+ReLU, Linear(a,b)+BN+ReLU, Linear(b,c, bias=False); the embedding size is the
    last width. Keys ``projector.{0,1,3,4,6}`` as the official ``nn.Sequential``.

    Args:
        in_channels: representation width D.
        mlp: widths, ``'8192-8192-8192'`` (VICReg) / ``'1024-1024-1024'`` (TOV-VICReg default).
        norm_cfg: normalisation of the hidden layers (``BN1d``; ``SyncBN`` for multi-GPU runs).
        with_avg_pool: average-pool ``[B, C, H, W]`` inputs (CNN backbones) first.
    """

    def __init__(self, in_channels: int, mlp: Union[str, Sequence[int]] = '8192-8192-8192',
                 norm_cfg: dict = dict(type='BN1d'), with_avg_pool: bool = True,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        widths = [int(in_channels)] + parse_mlp_spec(mlp)
        layers: List[nn.Module] = []
        for i in range(len(widths) - 2):
            layers.append(nn.Linear(widths[i], widths[i + 1]))
            layers.append(build_norm_layer(norm_cfg, widths[i + 1])[1])
            layers.append(nn.ReLU(True))
        layers.append(nn.Linear(widths[-2], widths[-1], bias=False))
        self.projector = nn.Sequential(*layers)
        self.in_channels, self.embedding_size = widths[0], widths[-1]
        self.with_avg_pool = with_avg_pool

    def forward(self, x: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        if isinstance(x, (tuple, list)):
            x = x[-1]
        if x.dim() == 4 and self.with_avg_pool:
            x = x.mean(dim=(2, 3))
        if x.dim() != 2 or x.shape[1] != self.in_channels:
            raise ValueError(f'VICRegProjector(in_channels={self.in_channels}) got an input of '
                             f'shape {tuple(x.shape)}; set in_channels to the backbone width')
        return self.projector(x)


@MODELS.register_module()
class TemporalOrderHead(BaseModule):
    """Temporal order verification (TOV-VICReg ``temporal_order_predictor``, builder.py L67-91).

    The stack ``[r_t, r_{t−1}, r_{t+1}]`` of backbone representations is permuted by one of the six
    :data:`TEMPORAL_ORDERS`, concatenated (``[B, 3D]``) and mapped to one logit by
    ``Linear(3D → 1)``; the BCE target is 0 for order 0 (the reference order) and 1 for the other
    five (so positives have prior 1/6, as the official code).

    Args:
        in_channels: representation width D.
    """

    def __init__(self, in_channels: int, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.fc = nn.Linear(3 * in_channels, 1)
        self.register_buffer('orders', torch.tensor(TEMPORAL_ORDERS), persistent=False)

    @staticmethod
    def sample_labels(batch_size: int) -> Tensor:
        """One order label per sample, uniform over the six orders (official ``torch.randint``
        on the CPU generator)."""
        return torch.randint(0, len(TEMPORAL_ORDERS), (batch_size, ))

    def stack(self, reps: Sequence[Tensor]) -> Tensor:
        if len(reps) != 3:
            raise ValueError(f'TemporalOrderHead needs the (t, t-1, t+1) representations, got '
                             f'{len(reps)}')
        if any(r.dim() != 2 or r.shape != reps[0].shape for r in reps) or \
                reps[0].shape[1] != self.in_channels:
            raise ValueError(f'TemporalOrderHead(in_channels={self.in_channels}) needs three '
                             f'[B, {self.in_channels}] representations, got '
                             f'{[tuple(r.shape) for r in reps]}')
        return torch.stack(list(reps), dim=1)

    def permute(self, stacked: Tensor, labels: Tensor) -> Tensor:
        """``stacked`` ``[B, 3, D]`` in reference order → ``[B, 3D]`` in each sample's order."""
        if labels.shape != stacked.shape[:1]:
            raise ValueError(f'order labels must be [B] = [{stacked.shape[0]}], got '
                             f'{tuple(labels.shape)}')
        if labels.numel() and (labels.min() < 0 or labels.max() >= len(TEMPORAL_ORDERS)):
            raise ValueError('order labels must lie in 0..5 (index into TEMPORAL_ORDERS)')
        index = self.orders.to(stacked.device)[labels.to(stacked.device)]  # [B, 3]
        gathered = torch.gather(stacked, 1, index.unsqueeze(-1).expand(-1, -1, stacked.shape[-1]))
        return gathered.flatten(1)

    def forward(self, concat: Tensor) -> Tensor:
        return self.fc(concat)

    def loss(self, reps: Sequence[Tensor], labels: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """BCE of the order prediction. Returns ``loss``, ``logits`` ``[B, 1]``, ``concat``
        ``[B, 3D]``, ``labels`` and binary ``targets``."""
        stacked = self.stack(reps)
        if labels is None:
            labels = self.sample_labels(stacked.shape[0])
        concat = self.permute(stacked, labels)
        logits = self(concat)
        targets = (labels != 0).to(logits.dtype).view(-1, 1).to(logits.device)
        loss = F.binary_cross_entropy_with_logits(logits, targets)
        return dict(loss=loss, logits=logits, concat=concat, labels=labels, targets=targets)

    @torch.no_grad()
    def all_order_logits(self, reps: Sequence[Tensor]) -> Tensor:
        """Logits of every sample in each of the six orders, ``[B, 6]``."""
        stacked = self.stack(reps)
        B = stacked.shape[0]
        out = [self(self.permute(stacked, torch.full((B, ), k, dtype=torch.long)))
               for k in range(len(TEMPORAL_ORDERS))]
        return torch.cat(out, dim=1)

    @staticmethod
    def balanced_accuracy(all_logits: Tensor) -> Tensor:
        """Balanced accuracy (mean of the two class recalls, chance = 0.5) of ``[B, 6]`` logits:
        order 0 should score < 0 (target 0), orders 1-5 > 0."""
        ref = (all_logits[:, 0] < 0).float().mean()
        shuffled = (all_logits[:, 1:] > 0).float().mean()
        return (ref + shuffled) / 2

    @staticmethod
    def ranking_accuracy(all_logits: Tensor) -> Tensor:
        """Threshold-free order accuracy of ``[B, 6]`` logits: the fraction of (sample, shuffled
        order) pairs whose shuffled logit exceeds the reference one (ties count ½; chance 0.5).
        Insensitive to the 1:5 class prior the BCE optimum is biased by."""
        ref = all_logits[:, :1]
        other = all_logits[:, 1:]
        return ((other > ref).float() + 0.5 * (other == ref).float()).mean()


def dino_vit_tokens(backbone: VisionTransformer, x: Tensor, pos_interpolation: str = 'dino'
                    ) -> Tensor:
    """DINO ViT forward (TOV-VICReg ``networks/vit.py``) on an mmpretrain ViT: patch tokens, cls
    prepended, position embedding added (``'dino'``: bicubic with the ``+0.1`` scale-factor trick
    when the grid differs from the training one; ``'mmpretrain'``: ``resize_pos_embed``), the
    blocks, the final norm. Returns all tokens ``[B, 1+L, D]`` (cls first)."""
    tokens, grid = backbone.patch_embed(x)
    if pos_interpolation == 'dino':
        pos = dino_resize_pos_embed(backbone.pos_embed, backbone.patch_resolution, grid,
                                    backbone.num_extra_tokens)
    else:
        pos = resize_pos_embed(backbone.pos_embed, backbone.patch_resolution, grid,
                               mode=backbone.interpolate_mode,
                               num_extra_tokens=backbone.num_extra_tokens)
    h = torch.cat([backbone.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1) + pos
    h = backbone.pre_norm(backbone.drop_after_pos(h))
    for layer in backbone.layers:
        h = layer(h)
    return backbone.ln1(h) if backbone.final_norm else h


def dino_vit_init(backbone: VisionTransformer) -> None:
    """The official (DINO ``VisionTransformer``) initialisation: Linear weights trunc-normal(0.02)
    with zero bias, LayerNorm 1/0, cls token and position embedding trunc-normal(0.02), the patch
    convolution at torch's default."""
    for m in backbone.modules():
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    trunc_normal_(backbone.pos_embed, std=.02)
    trunc_normal_(backbone.cls_token, std=.02)
    backbone.patch_embed.projection.reset_parameters()


@MODELS.register_module()
class VICReg(BaseSelfSupervisor):
    """VICReg (Bardes et al., ICLR 2022): two augmented views, a shared backbone and expander
    (``neck``, :class:`VICRegProjector`), :class:`VICRegLoss` on the two embeddings.

    Args:
        backbone: any mmpretrain backbone; an mmpretrain ``VisionTransformer`` (e.g.
            ``mmmask.MaskedViT``) is run by :func:`dino_vit_tokens` and represented by its cls
            token after the final norm (the DINO ViT of TOV-VICReg); other backbones by their last
            output (``[B, C, H, W]`` maps are average-pooled by the projector).
        neck: :class:`VICRegProjector` config.
        loss: :class:`VICRegLoss` config.
        pos_interpolation: ``'dino'`` (official) or ``'mmpretrain'`` for ViT inputs off the
            training grid.
        official_init: re-initialise a ViT backbone as the official DINO ViT (unless it loads a
            pretrained checkpoint).
    """

    def __init__(self, backbone: dict, neck: dict, loss: dict = dict(type='mmmask.VICRegLoss'),
                 pos_interpolation: str = 'dino', official_init: bool = True,
                 data_preprocessor: Optional[dict] = None, init_cfg=None, **kwargs):
        if data_preprocessor is None:
            data_preprocessor = dict(type='mmpretrain.SelfSupDataPreprocessor')
        super().__init__(backbone=backbone, neck=neck, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg, **kwargs)
        if pos_interpolation not in ('dino', 'mmpretrain'):
            raise ValueError("pos_interpolation must be 'dino' or 'mmpretrain'")
        self.vicreg_loss = MODELS.build(loss)
        self.pos_interpolation, self.official_init = pos_interpolation, official_init
        self.is_vit = isinstance(self.backbone, VisionTransformer)
        if self.is_vit and self.backbone.cls_token is None:
            raise ValueError('VICReg represents a ViT by its cls token: build the backbone with '
                             'with_cls_token=True')

    def init_weights(self) -> None:
        super().init_weights()
        bb_init = getattr(self.backbone, 'init_cfg', None)
        pretrained = isinstance(bb_init, dict) and bb_init.get('type') == 'Pretrained'
        if self.is_vit and self.official_init and not pretrained:
            dino_vit_init(self.backbone)

    def extract_feat(self, inputs: Tensor):
        """ViT: final-norm tokens ``[B, 1+L, D]`` (cls first) in a 1-tuple, so the k-NN hook can
        pool ``cls``/``mean``/``flatten``; other backbones: their outputs."""
        if self.is_vit:
            return (dino_vit_tokens(self.backbone, inputs, self.pos_interpolation), )
        return self.backbone(inputs)

    def represent(self, x: Tensor) -> Tensor:
        """Backbone representation ``[B, D]`` (ViT: cls token after the final norm)."""
        if self.is_vit:
            return dino_vit_tokens(self.backbone, x, self.pos_interpolation)[:, 0]
        out = self.backbone(x)
        out = out[-1] if isinstance(out, (tuple, list)) else out
        return out.mean(dim=(2, 3)) if out.dim() == 4 else out

    def represent_views(self, views: Sequence[Tensor]) -> List[Tensor]:
        """Representations of several same-sized views in one backbone pass."""
        if len({tuple(v.shape) for v in views}) == 1:
            return list(self.represent(torch.cat(list(views))).chunk(len(views)))
        return [self.represent(v) for v in views]

    @staticmethod
    def _views(inputs, needed: int, what: str) -> List[Tensor]:
        if not isinstance(inputs, (list, tuple)) or len(inputs) < needed:
            got = len(inputs) if isinstance(inputs, (list, tuple)) else 1
            raise ValueError(f'{what} needs {needed} views per sample, got {got}: build them with '
                             "mmpretrain 'MultiView' / 'mmmask.MultiViewWithKeys'")
        return list(inputs)

    def loss(self, inputs: List[Tensor], data_samples=None, **kwargs) -> Dict[str, Tensor]:
        x, y = self._views(inputs, 2, 'VICReg')[:2]
        rx, ry = self.represent_views([x, y])
        out = self.vicreg_loss(self.neck(rx), self.neck(ry))
        return dict(loss=out['loss'], inv=out['invariance'].detach(),
                    var=out['variance'].detach(), cov=out['covariance'].detach())


@MODELS.register_module()
class TOVVICReg(VICReg):
    """TOV-VICReg (Goulão & Oliveira, 2023): VICReg on two views x, y of frame t plus temporal
    order verification (:class:`TemporalOrderHead`) on the backbone representations of
    (x, t−1, t+1).

    Inputs: four views per sample in the order ``[x, y, z, w]`` = two augmentations of frame t, the
    lightly augmented t−1 and t+1 (``mmmask.MultiViewWithKeys(num_views=[2, 1, 1],
    sources=[None, 'img_prev', 'img_next'])``).

    Args:
        head: :class:`TemporalOrderHead` config (``in_channels`` = backbone width).
        temporal_coeff: weight of the temporal BCE (official default 1, run script 0.1).
        project_neighbours: also run z and w through the projector (official: their projections
            are unused but update the projector's BatchNorm running statistics).
        backbone / neck / loss / pos_interpolation / official_init: see :class:`VICReg`
            (the official ``loss`` uses ``batch_size`` = the configured batch size).

    ``loss(inputs, data_samples, order_labels=None)``: ``order_labels`` ``[B]`` in 0..5 replaces
    the random draw (tests).
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 loss: dict = dict(type='mmmask.VICRegLoss'), temporal_coeff: float = 1.0,
                 project_neighbours: bool = True, **kwargs):
        super().__init__(backbone=backbone, neck=neck, loss=loss, head=head, **kwargs)
        self.temporal_coeff, self.project_neighbours = temporal_coeff, project_neighbours

    def forward_train(self, x: Tensor, y: Tensor, z: Tensor, w: Tensor,
                      order_labels: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """The official ``TOVVICReg.forward`` with every intermediate: ``repr_*``, ``proj_*``,
        the VICReg terms, the temporal head's outputs and the weighted ``loss``."""
        rx, ry, rz, rw = self.represent_views([x, y, z, w])
        out = dict(repr_x=rx, repr_y=ry, repr_z=rz, repr_w=rw)
        # one projector call per view: BatchNorm statistics per view, as the official code
        out['proj_x'], out['proj_y'] = self.neck(rx), self.neck(ry)
        if self.project_neighbours:
            out['proj_z'], out['proj_w'] = self.neck(rz), self.neck(rw)
        vic = self.vicreg_loss(out['proj_x'], out['proj_y'])
        tov = self.head.loss([rx, rz, rw], order_labels)
        out.update(invariance=vic['invariance'], variance=vic['variance'],
                   covariance=vic['covariance'], temporal=tov['loss'], concat=tov['concat'],
                   logits=tov['logits'], order_labels=tov['labels'])
        out['loss_vicreg'] = vic['loss']
        out['loss_temporal'] = self.temporal_coeff * tov['loss']
        out['loss'] = out['loss_vicreg'] + out['loss_temporal']
        return out

    def loss(self, inputs: List[Tensor], data_samples=None, order_labels: Optional[Tensor] = None,
             **kwargs) -> Dict[str, Tensor]:
        views = self._views(inputs, 4, 'TOV-VICReg')
        if len(views) != 4:
            raise ValueError(f'TOV-VICReg needs exactly 4 views [t, t, t-1, t+1], got '
                             f'{len(views)}')
        out = self.forward_train(*views, order_labels=order_labels)
        all_logits = self.head.all_order_logits(
            [out['repr_x'].detach(), out['repr_z'].detach(), out['repr_w'].detach()])
        return dict(loss_vicreg=out['loss_vicreg'], loss_temporal=out['loss_temporal'],
                    inv=out['invariance'].detach(), var=out['variance'].detach(),
                    cov=out['covariance'].detach(), temporal_bce=out['temporal'].detach(),
                    temporal_bacc=self.head.balanced_accuracy(all_logits),
                    temporal_rank=self.head.ranking_accuracy(all_logits))

    @torch.no_grad()
    def temporal_order_logits(self, t: Tensor, prev: Tensor, nxt: Tensor) -> Tensor:
        """``[B, 6]`` head logits of frames (t, t−1, t+1) in each of the six orders (evaluation)."""
        reps = self.represent_views([t, prev, nxt])
        return self.head.all_order_logits(reps)
