"""DiSRT testbench (arXiv 2506.00718): patch-rearrangement distortion, oddity triplets, the
odd-one-out rule and metric, and the texture-only control model."""
import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

import mmmask.evaluation.robustness  # noqa: F401  (registers the DiSRT modules)
from mmmask.evaluation.robustness.disrt import (CHANCE, BagOfLocalFeatures, OddityAccuracy,
                                                OddityTriplets, PatchShuffle, oddity_accuracy,
                                                oddity_credit, oddity_scores,
                                                patch_permutation, shuffle_patches)
from mmmask.registry import DATASETS, METRICS, MODELS, TRANSFORMS


def cells(img, g):
    ph, pw = img.shape[0] // g, img.shape[1] // g
    return [img[r * ph:(r + 1) * ph, c * pw:(c + 1) * pw] for r in range(g) for c in range(g)]


def test_derangement_and_swaps():
    rng = np.random.default_rng(0)
    for _ in range(20):
        perm = patch_permutation(16, rng)
        assert sorted(perm) == list(range(16)) and (perm != np.arange(16)).all()
    perm = patch_permutation(16, rng, 'swap', num_swaps=3)
    assert (perm != np.arange(16)).sum() == 6 and (perm[perm] == np.arange(16)).all()
    with pytest.raises(ValueError):
        patch_permutation(16, rng, 'swap', num_swaps=9)


def test_shuffle_keeps_every_patch_exactly():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (66, 64, 3), dtype=np.uint8)  # 66 rows: 2 remainder rows
    perm = patch_permutation(16, rng)
    out = shuffle_patches(img, 4, perm)
    src, dst = cells(img[:64], 4), cells(out[:64], 4)
    for i, p in enumerate(perm):
        assert np.array_equal(dst[i], src[p])  # local texture untouched
    assert np.array_equal(out[64:], img[64:])  # remainder rows stay
    assert not np.array_equal(out, img)
    # torch, channel-first, batched: the same rearrangement
    t = torch.from_numpy(img[:64]).permute(2, 0, 1)[None].repeat(2, 1, 1, 1)
    out_t = shuffle_patches(t, 4, perm)
    assert torch.equal(out_t[1].permute(1, 2, 0), torch.from_numpy(out[:64]))
    assert np.array_equal(shuffle_patches(out, 4, np.argsort(perm)), img)  # invertible


def test_patch_shuffle_transform_is_seeded():
    img = np.random.default_rng(2).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    t = TRANSFORMS.build(dict(type='mmmask.PatchShuffle', grid=(2, 4), seed=3))
    a = t(dict(img=img.copy(), sample_idx=5))
    b = t(dict(img=img.copy(), sample_idx=5))
    c = t(dict(img=img.copy(), sample_idx=6))
    assert np.array_equal(a['img'], b['img']) and not np.array_equal(a['patch_perm'],
                                                                      c['patch_perm'])
    d = PatchShuffle(grid=4)(dict(img=img.copy(), disrt_seed=11))
    e = PatchShuffle(grid=4)(dict(img=img.copy(), disrt_seed=11))
    assert np.array_equal(d['img'], e['img'])
    assert PatchShuffle(grid=4, prob=0.)(dict(img=img.copy()))['patch_perm'] is None


def test_synthetic_triplets_two_identical_one_different_score_100():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 32, generator=g), torch.randn(50, 32, generator=g)
    odd = torch.randint(0, 3, (50, ), generator=g)
    feats = torch.stack([a, a, a], 1)
    feats[torch.arange(50), odd] = b
    for distance in ('cosine', 'euclidean'):
        assert oddity_accuracy(feats, odd, distance) == 100.
        assert oddity_accuracy(feats, (odd + 1) % 3, distance) == 0.


def test_invariant_features_score_chance_exactly():
    feats = torch.randn(30, 1, 16).repeat(1, 3, 1)
    feats = feats + 1e-9 * torch.randn_like(feats)  # float noise of a reordered sum
    for distance in ('cosine', 'euclidean'):
        credit = oddity_credit(feats, torch.zeros(30, dtype=torch.long), distance)
        assert torch.allclose(credit, torch.full((30, ), 1 / 3, dtype=torch.float64))
    assert oddity_accuracy(feats, [1] * 30) == pytest.approx(CHANCE)


def test_odd_one_is_outside_the_closest_pair():
    feats = torch.tensor([[[0., 1.], [1., 0.], [0.9, 0.1]]])  # items 1 and 2 close
    scores = oddity_scores(feats)
    assert scores.argmax() == 0
    assert oddity_accuracy(feats, [0]) == 100.


class ToyImages(Dataset):
    """Result dicts with distinct random images (what a loading pipeline yields)."""

    def __init__(self, n=7, size=16):
        rng = np.random.default_rng(0)
        self.imgs = [rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for _ in range(n)]
        self.metainfo = dict(classes=('a', ))

    def __len__(self):
        return len(self.imgs)

    def __getitem__(self, i):
        return dict(img=self.imgs[i].copy(), sample_idx=i, gt_label=0)


def test_oddity_triplets_disrt_mode():
    ds = OddityTriplets(ToyImages(), pipeline=[dict(type='mmpretrain.PackInputs')],
                        distortion=dict(type='mmmask.PatchShuffle', grid=4), seed=0)
    assert len(ds) == 21 and ds.metainfo['num_triplets'] == 7
    odds = [ds.odd_view(t) for t in range(7)]
    assert len(set(odds)) > 1  # the original is not always at the same position
    for t in range(7):
        views = [ds[3 * t + v] for v in range(3)]
        metas = [v['data_samples'].metainfo for v in views]
        assert all(m['triplet_id'] == t and m['odd_view'] == odds[t] for m in metas)
        imgs = [v['inputs'].permute(1, 2, 0).numpy() for v in views]
        original = ds.dataset.imgs[t]
        assert np.array_equal(imgs[odds[t]], original)
        distorted = [imgs[v] for v in range(3) if v != odds[t]]
        assert not np.array_equal(distorted[0], distorted[1])
        for d in distorted:  # the same 16 patches, rearranged
            assert not np.array_equal(d, original)
            src = sorted(c.tobytes() for c in cells(original, 4))
            assert sorted(c.tobytes() for c in cells(d, 4)) == src
    again = OddityTriplets(ToyImages(), pipeline=[dict(type='mmpretrain.PackInputs')], seed=0)
    assert torch.equal(again[4]['inputs'], ds[4]['inputs'])  # reproducible


def test_oddity_triplets_identical_mode_and_subset():
    ds = DATASETS.build(dict(type='mmmask.OddityTriplets', dataset=ToyImages(n=8), mode='identical',
                             num_triplets=3))
    assert len(ds) == 9 and list(ds.sources) == [0, 4, 7]
    for t in range(3):
        views = [ds.get_view(t, v)['img'] for v in range(3)]
        same = [v for v in range(3) if v != ds.odd_view(t)]
        assert np.array_equal(views[same[0]], views[same[1]])
        assert not np.array_equal(views[ds.odd_view(t)], views[same[0]])
    with pytest.raises(ValueError, match='mode'):
        OddityTriplets(ToyImages(), mode='pairs')


def test_oddity_metric_groups_samples_by_triplet():
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(0)
    metric = METRICS.build(dict(type='mmmask.OddityAccuracy'))
    samples = []
    for t in range(6):
        odd = t % 3
        base, other = torch.rand(10, generator=g), torch.rand(10, generator=g)
        for v in range(3):
            s = DataSample()
            s.set_metainfo(dict(triplet_id=t, triplet_view=v, odd_view=odd))
            s.set_field(other if v == odd else base, 'pred_score')
            samples.append(s)
    order = torch.randperm(len(samples), generator=g).tolist()  # any sample order
    metric.process({}, [samples[i].to_dict() for i in order[:10]])
    metric.process({}, [samples[i] for i in order[10:]])
    metric.results.pop()  # one triplet incomplete: skipped
    res = metric.compute_metrics(metric.results)
    assert res['accuracy'] == 100. and res['num_triplets'] == 5. and res['chance'] == CHANCE
    bad = OddityAccuracy()
    with pytest.raises(KeyError, match='OddityTriplets'):
        lonely = DataSample()
        lonely.set_field(torch.ones(3), 'pred_score')
        bad.process({}, [lonely])


def test_bag_of_local_features_is_blind_to_patch_rearrangement():
    torch.manual_seed(0)
    model = MODELS.build(dict(type='mmmask.BagOfLocalFeatures', patch_size=8, widths=(8, 16)))
    model.eval()
    x = torch.randn(4, 3, 32, 32)
    rng = np.random.default_rng(0)
    perm, perm2 = patch_permutation(16, rng), patch_permutation(16, rng)
    with torch.no_grad():
        f = model(x)[0].mean((2, 3))
        f_shuffled = model(shuffle_patches(x, 4, perm))[0].mean((2, 3))
        f_shuffled2 = model(shuffle_patches(x, 4, perm2))[0].mean((2, 3))
        f_other = model(torch.randn(4, 3, 32, 32))[0].mean((2, 3))
    assert torch.allclose(f, f_shuffled, atol=1e-6)
    feats = torch.stack([f, f_shuffled, f_shuffled2], 1)
    assert oddity_accuracy(feats, [0] * 4) == pytest.approx(CHANCE)
    assert not torch.allclose(f, f_other, atol=1e-3)
    assert isinstance(model, BagOfLocalFeatures)


def test_patch_local_backbone_keeps_keys_and_is_blind_to_rearrangement():
    torch.manual_seed(0)
    resnet_cfg = dict(type='mmpretrain.ResNet', depth=18, stem_channels=8, base_channels=8)
    plain = MODELS.build(resnet_cfg)
    local = MODELS.build(dict(type='mmmask.PatchLocal', backbone=resnet_cfg, patch_size=16))
    assert list(local.state_dict()) == list(plain.state_dict())
    local.load_state_dict(plain.state_dict())
    local.eval()
    x = torch.randn(2, 3, 64, 64)
    perm = patch_permutation(16, np.random.default_rng(0))
    with torch.no_grad():
        out = local(x)
        shuffled = local(shuffle_patches(x, 4, perm))
    assert out[-1].shape == (2, 64, 4, 4)
    assert torch.allclose(out[-1].mean((2, 3)), shuffled[-1].mean((2, 3)), atol=1e-5)
    # the tiles are the per-patch outputs, moved with their patches
    assert torch.allclose(shuffled[-1].flatten(2), out[-1].flatten(2)[..., perm], atol=1e-5)
    with pytest.raises(ValueError, match='multiple'):
        local(torch.randn(1, 3, 40, 64))
