"""The masking library: every generator's contract (counts, orders, ids consistency) and the
strategy-specific properties from the papers (HPM top-k and schedule, MaskAlign sampling, CMAE
co-mask, BEiT/SimMIM shapes)."""
import pytest
import torch
from mmengine.logging import MessageHub

import mmmask.models  # noqa: F401
from mmmask.models.masking import (MaskPair, MaskSample, num_visible, sample_from_mask,
                                   sample_from_order, token_to_pixel_mask)
from mmmask.registry import MODELS

GRID = (8, 8)
L = 64


def build(type_, **kw):
    return MODELS.build(dict(type=f'mmmask.{type_}', **kw))


def check_consistent(s: MaskSample):
    """mask, ids_keep and ids_restore describe the same split."""
    B, n = s.mask.shape
    kept = torch.zeros_like(s.mask)
    kept.scatter_(1, s.ids_keep, True)
    assert torch.equal(kept, ~s.mask)
    # ids_restore inverts [visible..., masked...] back to raster order (MAE convention)
    order = torch.argsort(s.ids_restore, 1)
    assert torch.equal(order[:, :s.num_keep], s.ids_keep)
    assert torch.equal(torch.gather(order, 1, s.ids_restore), torch.arange(n).expand(B, -1))


@pytest.mark.parametrize('ratio', [0.0, 0.5, 0.75, 0.9])
def test_random_masking_counts_and_orders(ratio):
    torch.manual_seed(0)
    s = build('RandomMasking', ratio=ratio)(3, GRID)
    keep = int(L * (1 - ratio))
    assert s.ids_keep.shape == (3, keep)
    assert (s.mask.sum(1) == L - keep).all()
    check_consistent(s)
    torch.manual_seed(0)
    sorted_ = build('RandomMasking', ratio=ratio, sort_keep=True)(3, GRID)
    assert torch.equal(sorted_.mask, s.mask)  # same set, different order
    assert torch.equal(sorted_.ids_keep, s.ids_keep.sort(1).values)


def test_ratio_validation():
    with pytest.raises(ValueError, match='mask ratio'):
        build('RandomMasking', ratio=1.0)


def test_blockwise_masking_is_blocky_and_bounded():
    torch.manual_seed(0)
    gen = build('BlockwiseMasking', ratio=0.4, min_num_patches=4)
    s = gen(4, (14, 14))
    counts = s.mask.sum(1)
    assert (counts <= round(0.4 * 196)).all() and (counts > 0.25 * 196).all()
    # block-wise: most masked tokens have a masked 4-neighbour (random masking at 40% would not)
    m = s.mask.view(4, 14, 14).float()
    neigh = torch.nn.functional.max_pool2d(m[:, None], 3, 1, 1)[:, 0]
    assert ((neigh * m).sum() / m.sum()) == 1
    exact = build('BlockwiseMasking', ratio=0.4, exact=True)(4, (14, 14))
    assert (exact.mask.sum(1) == round(0.4 * 196)).all() and exact.ids_keep is not None
    check_consistent(exact)


def test_coarse_random_masking_cells():
    s = build('CoarseRandomMasking', ratio=0.6, mask_patch_size=16, model_patch_size=4)(2, (8, 8))
    cells = s.mask.view(2, 2, 4, 2, 4)
    assert (cells.all((2, 4)) | ~cells.any((2, 4))).all()  # 4x4-token cells all-or-nothing
    assert (s.mask.sum(1) == 3 * 16).all()  # ceil(4 cells * 0.6) = 3 cells
    with pytest.raises(ValueError, match='not divisible'):
        build('CoarseRandomMasking', mask_patch_size=12, model_patch_size=4)(2, (8, 8))


def test_hard_patch_masking_masks_the_hardest():
    torch.manual_seed(0)
    scores = torch.randn(2, L)
    s = build('HardPatchMasking', ratio=0.75)(2, GRID, scores=scores, alpha=0.5)
    n_mask = L - num_visible(L, 0.75)
    assert (s.mask.sum(1) == n_mask).all() and s.extras['num_hard'] == int(n_mask * 0.5)
    top = scores.topk(s.extras['num_hard'], 1).indices
    assert s.mask.gather(1, top).all()
    assert torch.equal(s.ids_keep, s.ids_keep.sort(1).values)  # boolean-gather order
    check_consistent(s)


def test_hard_patch_schedule_reads_the_epoch():
    hub = MessageHub.get_current_instance()
    gen = build('HardPatchMasking', ratio=0.75)
    hub.update_info('max_epochs', 200)
    hub.update_info('epoch', 0)
    s = gen(2, GRID, scores=torch.randn(2, L))
    assert s.extras['num_hard'] == 0  # alpha = 0.5 / 200: fully random, as HPM at epoch 0
    hub.update_info('epoch', 99)
    assert gen(2, GRID, scores=torch.randn(2, L)).extras['num_hard'] == int(48 * 0.25)
    hub.update_info('epoch', 0)
    hub.update_info('max_epochs', 1)
    with pytest.raises(ValueError, match='scores'):
        gen(2, GRID)


def test_attention_guided_masking_keeps_salient_patches():
    torch.manual_seed(0)
    importance = torch.full((1, L), 1e-4)
    importance[0, :10] = 1.0
    s = build('AttentionGuidedMasking', ratio=0.7)(1, GRID, importance=importance)
    assert s.ids_keep.shape == (1, int(L * 0.3))
    assert set(range(10)) <= set(s.ids_keep[0].tolist())
    # sampling order is kept (not sorted)
    draws = [build('AttentionGuidedMasking', ratio=0.7)(1, GRID, importance=torch.rand(1, L))
             for _ in range(5)]
    assert any(not torch.equal(d.ids_keep, d.ids_keep.sort(1).values) for d in draws)
    with pytest.raises(ValueError, match='importance'):
        build('AttentionGuidedMasking')(1, GRID)


def test_double_masking_is_independent():
    torch.manual_seed(0)
    pair = build('DoubleMasking', generator=dict(type='mmmask.RandomMasking', ratio=0.75))(64, GRID)
    assert isinstance(pair, MaskPair)
    assert not torch.equal(pair.first.mask, pair.second.mask)
    share = pair.co_mask.float().mean().item()
    assert abs(share - 0.75**2) < 0.03  # independent draws: r^2 co-masked
    assert torch.equal(pair.co_mask, pair.first.mask & pair.second.mask)


def test_progressive_redundant_masking():
    hub = MessageHub.get_current_instance()
    gen = build('ProgressiveRedundantMasking', start_ratio=0.0, end_ratio=0.5)
    hub.update_info('max_iters', 100)
    hub.update_info('iter', 50)
    importance = torch.arange(L, dtype=torch.float).expand(2, -1)
    s = gen(2, GRID, importance=importance)
    assert abs(s.extras['ratio'] - 0.25) < 1e-6
    assert s.mask[:, :16].all() and not s.mask[:, 16:].any()  # least important first
    torch.manual_seed(0)
    tokens = torch.randn(2, L, 256)
    tokens[:, :20] = tokens[:, :1]  # 20 identical tokens are the most redundant
    s = gen(2, GRID, tokens=tokens, ratio=0.25)
    assert s.mask.sum() == 32 and not s.mask[:, 20:].any()
    hub.update_info('iter', 0)
    hub.update_info('max_iters', 1)


def test_helpers():
    mask = torch.tensor([[True, False, True, False], [False, False, True, True]])
    s = sample_from_mask(mask)
    assert s.ids_keep.tolist() == [[1, 3], [0, 1]]
    ragged = sample_from_mask(torch.tensor([[True, False, False, False], [True, True, False, False]]))
    assert ragged.ids_keep is None
    with pytest.raises(ValueError, match='fixed ratio'):
        ragged.num_keep
    s = sample_from_order(torch.tensor([[3, 1, 0, 2]]), 2)
    assert s.ids_keep.tolist() == [[3, 1]] and s.mask.tolist() == [[True, False, True, False]]
    pix = token_to_pixel_mask(torch.tensor([[True, False, False, True]]), (2, 2), (4, 4))
    assert pix.shape == (1, 1, 4, 4) and pix[0, 0, :2, :2].eq(1).all() and pix[0, 0, :2, 2:].eq(0).all()
