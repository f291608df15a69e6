"""mmmask.ClusterBatchSampler: exact parity with the official ``MCL_batch_sampler_DDP`` (every
rank/world of the fixtures), plain stage-0 batching, mmengine build, dataloader switching,
errors."""
import os.path as osp

import pytest
import torch
from mmengine.dataset import DefaultSampler
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.runner import Runner
from torch.utils.data import Dataset

from conftest import REPO
from mmmask.datasets.samplers.cluster_sampler import ClusterBatchSampler, cluster_batches
from mmmask.registry import DATA_SAMPLERS

FIXTURES = osp.join(REPO, 'tests', 'data', 'parity', 'mcl')


def _load(name):
    return torch.load(osp.join(FIXTURES, name), weights_only=False)


def _stored_perms(perms):
    """perm_fn replaying the fixture's torch.randperm draws (once per cluster, in order)."""
    it = iter(perms)

    def perm_fn(n):
        perm = next(it)
        assert perm.numel() == n
        return perm
    return perm_fn


class _Range(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


@pytest.mark.parametrize('name', ['mcl_sampler.pt', 'mcl_sampler_sparse_labels.pt'])
def test_parity_every_rank_world(name):
    fx = _load(name)
    meta, labels, perms = fx['meta'], fx['inputs']['pseudo_label'], fx['inputs']['perms']
    assert fx['outputs'], 'fixture without cases'
    for rank, world in meta['rank_world']:
        expected = fx['outputs'][f'rank{rank}_world{world}']
        sampler = ClusterBatchSampler(DefaultSampler(_Range(len(labels)), shuffle=False),
                                      meta['batch_size'], pseudo_labels=labels, rank=rank,
                                      world_size=world, perm_fn=_stored_perms(perms))
        assert sampler.num_clusters == meta['cluster_num']  # max(label) + 1
        batches = torch.tensor(list(sampler), dtype=torch.long)
        assert torch.equal(batches, expected['batches']), (rank, world)
        assert len(sampler) == expected['len'] == len(batches)


def test_batches_single_cluster_and_ranks_disjoint():
    labels = torch.randint(0, 5, (203,), generator=torch.Generator().manual_seed(0))
    seen = []
    for rank in range(3):  # the same draws on every rank (as with seed=int)
        gen = torch.Generator().manual_seed(1)
        out = cluster_batches(labels, 4, 5, rank, 3, lambda n: torch.randperm(n, generator=gen))
        for b in out:
            assert len(b) == 4 and len(set(labels[b].tolist())) == 1
        seen += [i for b in out for i in b]
    assert len(seen) == len(set(seen))  # each index on at most one rank
    # (the official run seeds torch with seed + rank, so its ranks' draws differ and overlap)
    counts = torch.bincount(labels, minlength=5)
    assert len(seen) == sum(int(n) // 3 // 4 * 4 * 3 for n in counts)
    # consecutive batches cycle through the clusters while they last
    out = cluster_batches(labels, 4, 5, 0, 1, lambda n: torch.arange(n))
    first = [int(labels[b[0]]) for b in out[:5]]
    assert first == [0, 1, 2, 3, 4]
    # identity permutation, pop from the end: the first batch is cluster 0's last members
    members0 = (labels == 0).nonzero().flatten().tolist()
    keep = len(members0) // 4 * 4
    assert out[0] == members0[:keep][::-1][:4]


def test_stage0_plain_batches_and_seeded_mode():
    base = DefaultSampler(_Range(10), shuffle=False)
    s = ClusterBatchSampler(base, 4)
    assert list(s) == [[0, 1, 2, 3], [4, 5, 6, 7]] and len(s) == 2 and not s.cluster_mode
    s = ClusterBatchSampler(base, 4, drop_last=False)
    assert list(s)[-1] == [8, 9] and len(s) == 3
    labels = torch.tensor([0, 1] * 20)
    s = ClusterBatchSampler(DefaultSampler(_Range(40), shuffle=True, seed=0), 4, seed=3,
                            pseudo_labels=labels)
    a, b = list(s), list(s)
    assert a == b  # seeded: the same epoch gives the same batches
    s.sampler.set_epoch(1)
    assert list(s) != a
    s.set_pseudo_labels(None)
    assert not s.cluster_mode and len(s) == 10


def test_mmengine_builds_it_and_switch_reaches_workers():
    """Runner.build_dataloader passes sampler/batch_size; switching labels on the live object
    changes the next epoch's batches with num_workers 0 and 2 (persistent workers too)."""
    labels = torch.tensor([i % 3 for i in range(48)])
    for workers in (0, 2):
        loader = Runner.build_dataloader(dict(
            dataset=_Range(48), batch_size=4, num_workers=workers,
            persistent_workers=workers > 0, sampler=dict(type='DefaultSampler', shuffle=True),
            batch_sampler=dict(type='mmmask.ClusterBatchSampler'),
            collate_fn=dict(type='default_collate')), seed=0)
        assert isinstance(loader.batch_sampler, ClusterBatchSampler)
        first = [b.tolist() for b in loader]
        assert len(first) == 12 and any(len(set(labels[b].tolist())) > 1 for b in first)
        loader.batch_sampler.set_pseudo_labels(labels)
        second = [b.tolist() for b in loader]
        assert len(second) == len(loader) == 12
        assert all(len(set(labels[b].tolist())) == 1 for b in second)
    assert DATA_SAMPLERS.get('ClusterBatchSampler') is ClusterBatchSampler
    assert MMENGINE_DATA_SAMPLERS.get('mmmask.ClusterBatchSampler') is ClusterBatchSampler


def test_errors_name_the_fix():
    base = DefaultSampler(_Range(10), shuffle=False)
    with pytest.raises(ValueError, match='unsliced'):
        ClusterBatchSampler(base, 2, pseudo_labels=torch.zeros(9, dtype=torch.long))
    with pytest.raises(ValueError, match='1-D integer'):
        ClusterBatchSampler(base, 2, pseudo_labels=torch.zeros(10))
    with pytest.raises(ValueError, match='max\\(label\\)\\+1'):
        ClusterBatchSampler(base, 2, pseudo_labels=torch.arange(10), num_clusters=3)
    with pytest.raises(ValueError, match='positive int'):
        ClusterBatchSampler(base, 0)
    with pytest.raises(ValueError, match='outside world_size'):
        ClusterBatchSampler(base, 2, rank=2, world_size=2)
    s = ClusterBatchSampler(base, 2, pseudo_labels=torch.zeros(10, dtype=torch.long),
                            perm_fn=lambda n: torch.arange(n - 1))
    with pytest.raises(ValueError, match='permutation'):
        list(s)
