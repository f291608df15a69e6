"""Single-cluster batches of MCL (Zhang et al., "Learning the Unlearned: Mitigating Feature
Suppression in Contrastive Learning", ECCV 2024, arXiv 2402.11816; official sampler:
``MajorDavidZhang/MCL`` ``my_training/data.py`` ``MCL_batch_sampler_DDP``).

"Feature-aware negative sampling" (paper §4): in stage s > 0 every batch is drawn from one
pseudo-label (the clusters of the earlier stages), so the in-batch negatives of an anchor share the
features the earlier stages already learned and the loss must use other features to tell them apart.
"""
from typing import Callable, Iterator, List, Optional, Sequence

import torch
from mmengine.dist import get_dist_info
from torch import Tensor
from torch.utils.data import Sampler

from mmmask.registry import DATA_SAMPLERS

__all__ = ['ClusterBatchSampler', 'cluster_batches']

PermFn = Callable[[int], Tensor]


def cluster_batches(pseudo_labels: Tensor, batch_size: int, num_clusters: int, rank: int,
                    world_size: int, perm_fn: PermFn) -> List[List[int]]:
    """The batches one rank yields in one epoch of the official sampler.

    1. For every cluster ``c`` in ascending order, ``perm_fn(n_c)`` permutes its members (kept in
       dataset order); the first ``⌊n_c / world / bs⌋ · bs · world`` permuted members are kept and
       member ``j`` goes to rank ``j % world`` (interleaved, permutation order preserved).
    2. Starting at cluster 0, indices are popped from the *end* of the current cluster's list
       until ``batch_size`` are collected; the batch is yielded and the next cluster
       (``(c + 1) % num_clusters``) takes its turn; an exhausted cluster is skipped (a partial
       batch is dropped then — which the truncation in 1. rules out).
    """
    members: List[List[int]] = [[] for _ in range(num_clusters)]
    for idx, c in enumerate(pseudo_labels.tolist()):
        members[c].append(idx)
    per_rank: List[List[int]] = []
    for c in range(num_clusters):
        perm = perm_fn(len(members[c]))
        if perm.numel() != len(members[c]):
            raise ValueError(f'perm_fn returned {perm.numel()} indices for cluster {c} of '
                             f'{len(members[c])} members; it must return a permutation of '
                             f'range(n)')
        keep = len(members[c]) // world_size // batch_size * batch_size * world_size
        per_rank.append([members[c][j] for j in perm[:keep].tolist()][rank::world_size])
    batches, batch, c = [], [], 0
    while any(per_rank):
        if per_rank[c]:
            batch.append(per_rank[c].pop())
            if len(batch) == batch_size:
                batches.append(batch)
                batch, c = [], (c + 1) % num_clusters
        else:
            batch, c = [], (c + 1) % num_clusters
    return batches


@DATA_SAMPLERS.register_module()
class ClusterBatchSampler(Sampler):
    """Batch sampler that yields single-cluster batches once pseudo labels are set (MCL).

    mmengine builds it from ``train_dataloader.batch_sampler`` with the dataloader's ``sampler``
    and ``batch_size`` (keep ``drop_last`` out of ``train_dataloader``; it is an argument here)::

        train_dataloader = dict(batch_size=64, sampler=dict(type='DefaultSampler', shuffle=True),
                                batch_sampler=dict(type='mmmask.ClusterBatchSampler'), ...)

    Without pseudo labels (MCL stage 0) it batches ``sampler`` like torch's ``BatchSampler``.
    :meth:`set_pseudo_labels` (called by ``mmmask.MCLStageHook`` at a stage boundary) switches to
    the official ``MCL_batch_sampler_DDP``: per-rank split done here (``sampler`` is then ignored),
    every batch from one cluster, clusters taken in turn, ``len = Σ_c ⌊n_c / world / bs⌋``.
    The dataloader keeps this object, so the switch holds for ``num_workers`` 0 and > 0 (indices
    are drawn in the main process when an epoch's iterator starts).

    Args:
        sampler: index sampler of stage 0 (e.g. mmengine ``DefaultSampler``).
        batch_size: images per batch and rank.
        drop_last: drop the last incomplete stage-0 batch.
        pseudo_labels: optional initial labels (``[len(dataset)]`` int).
        num_clusters: cluster count; ``None``: ``max(label) + 1`` as the official ``get_MCL_data``.
        rank, world_size: override the distributed rank/world (default: mmengine ``get_dist_info``).
        seed: ``None`` (official): each cluster's permutation comes from the global torch RNG in
            ``__iter__`` (no epoch seeding). An int: a generator seeded with ``seed + epoch``
            (epoch of ``sampler.set_epoch``), identical on every rank.
        perm_fn: inject the permutation source, ``perm_fn(n) -> LongTensor`` (called once per
            cluster, ascending, empty clusters included); overrides ``seed``.
    """

    def __init__(self, sampler: Sampler, batch_size: int, drop_last: bool = True,
                 pseudo_labels: Optional[Sequence[int]] = None,
                 num_clusters: Optional[int] = None, rank: Optional[int] = None,
                 world_size: Optional[int] = None, seed: Optional[int] = None,
                 perm_fn: Optional[PermFn] = None) -> None:
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f'batch_size must be a positive int, got {batch_size!r}')
        dist_rank, dist_world = get_dist_info()
        self.rank = dist_rank if rank is None else rank
        self.world_size = dist_world if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f'rank {self.rank} is outside world_size {self.world_size}')
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last
        self.seed, self.perm_fn = seed, perm_fn
        self.pseudo_labels: Optional[Tensor] = None
        self.num_clusters = 0
        if pseudo_labels is not None:
            self.set_pseudo_labels(pseudo_labels, num_clusters)

    # ------------------------------------------------------------------ state
    @property
    def cluster_mode(self) -> bool:
        """Whether batches are single-cluster (pseudo labels set)."""
        return self.pseudo_labels is not None

    def set_pseudo_labels(self, labels: Optional[Sequence[int]],
                          num_clusters: Optional[int] = None) -> None:
        """Switch to single-cluster batches over ``labels`` (``None``: back to plain batches)."""
        if labels is None:
            self.pseudo_labels, self.num_clusters = None, 0
            return
        labels = torch.as_tensor(labels)
        if labels.dim() != 1 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise ValueError('pseudo labels must be a 1-D integer tensor (one cluster id per '
                             f'dataset index), got dtype {labels.dtype} shape '
                             f'{tuple(labels.shape)}')
        labels = labels.long().cpu()
        if labels.numel() == 0 or int(labels.min()) < 0:
            raise ValueError('pseudo labels must be non-empty and >= 0')
        dataset = getattr(self.sampler, 'dataset', None)
        if dataset is not None and len(dataset) != labels.numel():
            raise ValueError(f'{labels.numel()} pseudo labels for a dataset of {len(dataset)} '
                             'images: cluster the whole (unsliced) train set, in dataset order')
        needed = int(labels.max()) + 1
        if num_clusters is None:
            num_clusters = needed
        elif num_clusters < needed:
            raise ValueError(f'num_clusters={num_clusters} but the labels go up to {needed - 1}; '
                             'pass num_clusters=None to use max(label)+1')
        self.pseudo_labels, self.num_clusters = labels, int(num_clusters)

    def _perm_fn(self) -> PermFn:
        if self.perm_fn is not None:
            return self.perm_fn
        if self.seed is None:
            return lambda n: torch.randperm(n)
        gen = torch.Generator().manual_seed(self.seed + int(getattr(self.sampler, 'epoch', 0)))
        return lambda n: torch.randperm(n, generator=gen)

    # --------------------------------------------------------------- sampling
    def __iter__(self) -> Iterator[List[int]]:
        if self.pseudo_labels is None:
            batch: List[int] = []
            for idx in self.sampler:
                batch.append(idx)
                if len(batch) == self.batch_size:
                    yield batch
                    batch = []
            if batch and not self.drop_last:
                yield batch
            return
        yield from cluster_batches(self.pseudo_labels, self.batch_size, self.num_clusters,
                                   self.rank, self.world_size, self._perm_fn())

    def __len__(self) -> int:
        if self.pseudo_labels is None:
            n = len(self.sampler)
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        counts = torch.bincount(self.pseudo_labels, minlength=self.num_clusters)
        return sum(int(n) // self.world_size // self.batch_size for n in counts)

    def cluster_sizes(self) -> Tensor:
        """Members per cluster (``[num_clusters]``; empty before pseudo labels are set)."""
        if self.pseudo_labels is None:
            return torch.zeros(0, dtype=torch.long)
        return torch.bincount(self.pseudo_labels, minlength=self.num_clusters)
