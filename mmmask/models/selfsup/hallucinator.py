"""Hallucinator (Wu, Hobbs, Hovakimyan, "Hallucination Improves the Performance of Unsupervised
Visual Representation Learning", ICCV 2023, arXiv 2307.12168; official code: github.com/jingwu6/
Hallucination-improves-the-performance-of-unsupervised-visual-representation-learning).

A small MLP generates one extra positive per sample in the *embedding* space: with the query
embedding ``q``, its positive ``k`` and one ``λ ~ U(0, 0.1)`` per batch, the extrapolation
``h = (1 + λ)·q − λ·k`` is pushed away from the key, and ``g = MLP([q; h])`` becomes an additional
query whose positive is again ``k``. The generator is a plug-in: :class:`HallucinatorGenerator` is
the module, :class:`HallucinatorMoCo`, :class:`HallucinatorSimCLR` and :class:`HallucinatorSimSiam`
are thin subclasses of mmpretrain's ``MoCo``, ``SimCLR`` and ``SimSiam`` that take
``hallucinator=dict(...)`` and insert it where the official variants do (``models/moco.py``,
``models/simclr_generator.py``, ``models/simsiam.py``).
"""
import random
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.dist import all_gather
from mmpretrain.models.selfsup import MoCo, SimCLR, SimSiam
from mmpretrain.models.selfsup.simclr import GatherLayer
from mmpretrain.models.utils import batch_shuffle_ddp, batch_unshuffle_ddp
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmmask.registry import MODELS, build_in_scope

__all__ = ['HallucinatorGenerator', 'HallucinatorMoCo', 'HallucinatorSimCLR',
           'HallucinatorSimSiam', 'build_hallucinator']


@MODELS.register_module()
class HallucinatorGenerator(BaseModule):
    """The Hallucinator generator (official ``models/generator.py`` ``Generator``).

    ``forward(q, k)`` returns ``cat([q, g])`` (``2N`` rows): the queries themselves followed by
    the hallucinated positives ``g = MLP(cat([q, (1+λ)q − λk], dim=1))``. The MLP is
    Linear(2d→h)–ReLU–Linear(h→h)–ReLU–Linear(h→d) with ``h = 2d`` by default (official dims:
    d = 128 in MoCo/SimCLR, d = 512 in SimSiam; ``inner_dim = in_dim = 2d`` everywhere).

    Args:
        feat_dim: d, the width of the embeddings it receives and returns.
        hidden_dim: h; defaults to ``2 * feat_dim`` (the official ``inner_dim``).
        max_ratio: λ is drawn from ``U(0, max_ratio)`` once per call (official 0.1) with python's
            ``random`` (seeded by mmengine's ``randomness.seed``).
        ratio_sampler: optional zero-argument callable returning λ (to inject a draw in tests or
            for a custom schedule); it replaces the uniform draw.
    """

    def __init__(self, feat_dim: int = 128, hidden_dim: Optional[int] = None,
                 max_ratio: float = 0.1, ratio_sampler: Optional[Callable[[], float]] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg)
        if feat_dim <= 0:
            raise ValueError(f'feat_dim must be positive, got {feat_dim}')
        if not 0.0 <= max_ratio:
            raise ValueError(f'max_ratio must be >= 0 (λ ~ U(0, max_ratio)), got {max_ratio}')
        hidden = hidden_dim or 2 * feat_dim
        self.feat_dim, self.max_ratio = feat_dim, max_ratio
        self.ratio_sampler = ratio_sampler
        self.mlp = nn.Sequential(
            nn.Linear(2 * feat_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, feat_dim))

    def sample_ratio(self) -> float:
        """One λ for the whole batch (official: ``random.uniform(0, 0.1)`` per forward)."""
        if self.ratio_sampler is not None:
            return float(self.ratio_sampler())
        return random.uniform(0, self.max_ratio)

    def hallucinate(self, query: Tensor, key: Tensor, ratio: float) -> Tensor:
        """The ``N`` hallucinated positives ``MLP([q; (1+λ)q − λk])``."""
        extrapolated = (1 + ratio) * query - ratio * key
        return self.mlp(torch.cat((query, extrapolated), 1))

    def forward(self, query: Tensor, key: Tensor, ratio: Optional[float] = None) -> Tensor:
        """``cat([query, hallucinate(query, key, λ)])``, ``[2N, d]``; λ drawn when None."""
        if query.dim() != 2 or query.shape != key.shape or query.shape[1] != self.feat_dim:
            raise ValueError(
                f'HallucinatorGenerator(feat_dim={self.feat_dim}) needs query and key of shape '
                f'[N, {self.feat_dim}], got {tuple(query.shape)} and {tuple(key.shape)}; set '
                "hallucinator=dict(feat_dim=...) to the embedding width it receives")
        ratio = self.sample_ratio() if ratio is None else float(ratio)
        return torch.cat((query, self.hallucinate(query, key, ratio)), 0)


def build_hallucinator(cfg: Optional[dict], feat_dim: int) -> HallucinatorGenerator:
    """Build the generator of an algorithm from its ``hallucinator=dict(...)``; ``feat_dim``
    defaults to the algorithm's embedding width and must agree with it if given."""
    cfg = dict(cfg or {})
    cfg.setdefault('type', 'mmmask.HallucinatorGenerator')
    if cfg.setdefault('feat_dim', feat_dim) != feat_dim:
        raise ValueError(f"hallucinator feat_dim={cfg['feat_dim']} does not match the "
                         f'embedding width {feat_dim} of the algorithm; drop feat_dim from '
                         'hallucinator=dict(...) or set it to the neck output width')
    return build_in_scope(MODELS, cfg)


def _two_views(inputs, name: str) -> Tuple[Tensor, Tensor]:
    if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
        raise ValueError(f'{name} needs two augmented views per sample: use a pipeline with '
                         "dict(type='MultiView', num_views=2, ...) before PackInputs")
    return inputs[0], inputs[1]


@MODELS.register_module()
class HallucinatorMoCo(MoCo):
    """MoCo (v1/v2) with Hallucinator (official ``models/moco.py`` with ``generator=True``).

    Per step: ``q`` = query projection (neck output, **not** normalised); one λ; momentum update
    of the key encoder (parameters only) **before** the key forward; keys from the BN-shuffled
    batch, L2-normalised, un-shuffled; ``q ← normalize(G(q, k, λ))`` (2N queries: originals then
    hallucinated); keys duplicated ``[k; k]``; InfoNCE against the queue (mmpretrain
    ``ContrastiveHead``); the **2N** duplicated keys are enqueued, so ``queue_len`` must be a
    multiple of ``2 × batch × world size``.

    Key encoder: as the official code (and unlike mmpretrain's ``MoCo``, whose EMA copies the
    query encoder's BatchNorm buffers every step), the update is
    ``θ_k ← m·θ_k + (1−m)·θ_q`` on parameters only, with ``m = 1 − momentum``; the key encoder
    keeps its own BN running statistics and is initialised as a copy of the query encoder.

    Args:
        hallucinator: :class:`HallucinatorGenerator` options (``feat_dim`` defaults to
            ``feat_dim``).
        Others as mmpretrain ``MoCo`` (``momentum`` is ``1 − m`` of the paper: 0.001 ↔ 0.999).
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 hallucinator: Optional[dict] = None, queue_len: int = 65536,
                 feat_dim: int = 128, momentum: float = 0.001,
                 pretrained: Optional[str] = None, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head, queue_len=queue_len,
                         feat_dim=feat_dim, momentum=momentum, pretrained=pretrained,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.hallucinator = build_hallucinator(hallucinator, feat_dim)

    def init_weights(self) -> None:
        """Initialise, then make the key encoder an exact copy of the query encoder (official
        ``MoCo.__init__``); its BN buffers are copied once here and then left to itself."""
        super().init_weights()
        query = nn.Sequential(self.backbone, self.neck)
        self.encoder_k.module.load_state_dict(query.state_dict())

    @torch.no_grad()
    def momentum_update_key_encoder(self) -> None:
        """Official ``_momentum_update_key_encoder``: parameters only, ``m·θ_k + (1−m)·θ_q``."""
        m = 1. - self.encoder_k.momentum
        query_params = list(self.backbone.parameters()) + list(self.neck.parameters())
        key_params = list(self.encoder_k.module.parameters())
        if len(query_params) != len(key_params):
            raise RuntimeError('key encoder and query encoder have different parameters')
        for p_q, p_k in zip(query_params, key_params):
            p_k.data = p_k.data * m + p_q.data * (1. - m)
        self.encoder_k.steps += 1

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys: Tensor) -> None:
        """Enqueue the (duplicated) keys of all ranks at ``queue_ptr``."""
        total = sum(k.shape[0] for k in all_gather(keys))
        if self.queue_len % total:
            raise ValueError(
                f'queue_len={self.queue_len} must be a multiple of the enqueued keys per step '
                f'({total} = 2 x batch x world size: Hallucinator enqueues the duplicated '
                'keys); choose queue_len accordingly (official: 65536 with batch 512)')
        super()._dequeue_and_enqueue(keys)

    def contrast(self, im_q: Tensor, im_k: Tensor) -> Dict[str, Tensor]:
        """One forward: returns ``l_pos [2N,1]``, ``l_neg [2N,K]``, the duplicated normalised
        keys ``keys [2N,d]`` (to enqueue) and ``ratio``. Momentum-updates the key encoder."""
        q = self.neck(self.backbone(im_q))[0]
        ratio = self.hallucinator.sample_ratio()
        with torch.no_grad():
            self.momentum_update_key_encoder()
            im_k, idx_unshuffle = batch_shuffle_ddp(im_k)
            k = F.normalize(self.encoder_k(im_k)[0], dim=1)
            k = batch_unshuffle_ddp(k, idx_unshuffle)
        q = F.normalize(self.hallucinator(q, k, ratio), dim=1)
        k = torch.cat((k, k), 0)
        l_pos = torch.einsum('nc,nc->n', [q, k]).unsqueeze(-1)
        l_neg = torch.einsum('nc,ck->nk', [q, self.queue.clone().detach()])
        return dict(l_pos=l_pos, l_neg=l_neg, keys=k,
                    ratio=torch.tensor(ratio, device=q.device))

    def loss(self, inputs: List[Tensor], data_samples=None, **kwargs) -> Dict[str, Tensor]:
        im_q, im_k = _two_views(inputs, 'HallucinatorMoCo')
        out = self.contrast(im_q, im_k)
        loss = self.head.loss(out['l_pos'], out['l_neg'])
        self._dequeue_and_enqueue(out['keys'])
        n = out['l_pos'].shape[0] // 2
        pos = out['l_pos'].detach().squeeze(1)
        # method signals: cosine of real and of hallucinated queries to their key
        return dict(loss=loss, pos_cos=pos[:n].mean(), halluc_pos_cos=pos[n:].mean())


@MODELS.register_module()
class HallucinatorSimCLR(SimCLR):
    """SimCLR with Hallucinator (official ``models/simclr_generator.py`` + ``DDP_simclr.py``).

    The two views go through backbone + projection neck in **separate** forwards (own BN batch
    statistics, as the official generator variant); ``f1 = G(z1, z2, λ)`` (``[z1; g]``) and
    ``f2 = [z2; z2]``; NT-Xent over the ``2·2N`` embeddings with ``f1_i ↔ f2_i`` as positive
    pairs (mmpretrain ``ContrastiveHead``; every other row is a negative, so each duplicated key
    also meets its copy as a negative — official behaviour). Neither ``z2`` is detached nor
    normalised before the generator.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 hallucinator: Optional[dict] = None, feat_dim: int = 128,
                 pretrained: Optional[str] = None, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head, pretrained=pretrained,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.hallucinator = build_hallucinator(hallucinator, feat_dim)

    def nt_xent(self, f1: Tensor, f2: Tensor) -> Tensor:
        """NT-Xent of the positive pairs ``(f1_i, f2_i)`` over all gathered rows."""
        z = torch.stack((f1, f2), 1).flatten(0, 1)  # rows 2i, 2i+1 are a pair
        z = z / (torch.norm(z, p=2, dim=1, keepdim=True) + 1e-10)
        z = torch.cat(GatherLayer.apply(z), dim=0)
        n = z.shape[0]
        s = z @ z.t()
        idx = torch.arange(n, device=z.device)
        partner = idx ^ 1
        positive = s[idx, partner].unsqueeze(1)
        keep = torch.ones_like(s, dtype=torch.bool)
        keep[idx, idx] = False
        keep[idx, partner] = False
        negative = s[keep].view(n, n - 2)
        return self.head.loss(positive, negative)

    def loss(self, inputs: List[Tensor], data_samples=None, **kwargs) -> Dict[str, Tensor]:
        v1, v2 = _two_views(inputs, 'HallucinatorSimCLR')
        z1 = self.neck(self.backbone(v1))[0]
        z2 = self.neck(self.backbone(v2))[0]
        f1 = self.hallucinator(z1, z2)
        f2 = torch.cat((z2, z2), 0)
        with torch.no_grad():
            n = z1.shape[0]
            cos = F.cosine_similarity(f1, f2, dim=1)
        return dict(loss=self.nt_xent(f1, f2), pos_cos=cos[:n].mean(),
                    halluc_pos_cos=cos[n:].mean())


@MODELS.register_module()
class HallucinatorSimSiam(SimSiam):
    """SimSiam with Hallucinator (official ``models/simsiam.py`` with ``generator=True``).

    The generator acts on the **predictor outputs**: ``P1 = G(p1, p2, λ1)``, then
    ``P2 = G(p2, p1, λ2)`` with a second draw (the un-hallucinated ``p1``; neither key is
    detached); the targets are duplicated, ``[z; z]`` (detached), and the loss is
    ``½(D(P1, [z2; z2]) + D(P2, [z1; z1]))`` with the head's cosine loss. The head must be
    mmpretrain's ``LatentPredictHead`` (its ``predictor`` and ``loss_module`` are used).
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 hallucinator: Optional[dict] = None, pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head, pretrained=pretrained,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not (hasattr(self.head, 'predictor') and hasattr(self.head, 'loss_module')):
            raise ValueError('HallucinatorSimSiam hallucinates predictor outputs: use '
                             "head=dict(type='LatentPredictHead', predictor=..., loss=...)")
        out = [m for m in self.head.predictor.modules() if isinstance(m, nn.Linear)]
        self.hallucinator = build_hallucinator(hallucinator, out[-1].out_features)

    def loss(self, inputs: List[Tensor], data_samples=None, **kwargs) -> Dict[str, Tensor]:
        v1, v2 = _two_views(inputs, 'HallucinatorSimSiam')
        z1 = self.neck(self.backbone(v1))[0]
        z2 = self.neck(self.backbone(v2))[0]
        p1 = self.head.predictor([z1])[0]
        p2 = self.head.predictor([z2])[0]
        h1 = self.hallucinator(p1, p2)
        h2 = self.hallucinator(p2, p1)
        t1 = torch.cat((z1, z1), 0).detach()
        t2 = torch.cat((z2, z2), 0).detach()
        loss = 0.5 * (self.head.loss_module(h1, t2) + self.head.loss_module(h2, t1))
        with torch.no_grad():
            n = z1.shape[0]
            cos = F.cosine_similarity(h1, t2, dim=1)
        return dict(loss=loss, pos_cos=cos[:n].mean(), halluc_pos_cos=cos[n:].mean())
