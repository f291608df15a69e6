"""kMaX-DeepLab criterion (matching, PQ, mask-ID, insdis, aux semantic) and PolyMaX dense losses."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmmask.models.losses import (KMaXCriterion, NormalAngularLoss, SILogRelSqrLoss,
                                  kmax_hungarian_match, semantic_to_masks)
from mmmask.models.losses import kmax_loss
from mmmask.registry import MODELS


def random_semantic(h=16, w=16, num_classes=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    sem = torch.randint(0, num_classes, (h // 4, w // 4), generator=g)
    sem = sem.repeat_interleave(4, 0).repeat_interleave(4, 1)
    return sem


def perfect_outputs(masks, labels, num_slots, num_classes, scale=30.0):
    """Slot k carries GT k (logits scaled); remaining slots are void everywhere."""
    num_gt, h, w = masks.shape
    pred_masks = torch.full((num_slots, h, w), -scale)
    pred_masks[:num_gt] = masks * 2 * scale - scale
    pred_logits = torch.full((num_slots, num_classes + 1), -scale)
    pred_logits[torch.arange(num_gt), labels] = scale
    pred_logits[num_gt:, -1] = scale
    return pred_logits, pred_masks


def make_outputs(bsz=2, k=6, n=5, h=16, w=16, c=8, num_aux=0, seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)

    def one():
        d = dict(pred_logits=torch.randn(bsz, k, n + 1, generator=g),
                 pred_masks=torch.randn(bsz, k, h, w, generator=g),
                 pixel_feature=F.normalize(torch.randn(bsz, c, h, w, generator=g), dim=1))
        if requires_grad:
            for v in d.values():
                v.requires_grad_(True)
        return d

    out = one()
    out['aux_outputs'] = [one() for _ in range(num_aux)]
    return out


# ---------------------------------------------------------------------------------------------
def test_matching_recovers_planted_permutation():
    num_classes, k = 5, 7
    sem = random_semantic(num_classes=num_classes, seed=1)
    masks, labels = semantic_to_masks(sem, num_classes)
    num_gt = masks.shape[0]
    logits, pmasks = perfect_outputs(masks, labels, k, num_classes, scale=5.0)
    perm = torch.randperm(k, generator=torch.Generator().manual_seed(3))
    logits, pmasks = logits[perm], pmasks[perm]
    pred_idx, gt_idx = kmax_hungarian_match(logits, pmasks, labels, masks)
    assert pred_idx.dtype == torch.long and len(pred_idx) == num_gt
    inv = torch.argsort(perm)  # slot of GT j after permutation is inv[j]
    for p, gidx in zip(pred_idx.tolist(), gt_idx.tolist()):
        assert p == inv[gidx].item()


def test_matching_empty_gt():
    pred_idx, gt_idx = kmax_hungarian_match(
        torch.randn(4, 3), torch.randn(4, 5, 5), torch.zeros(0, dtype=torch.long),
        torch.zeros(0, 5, 5))
    assert pred_idx.numel() == 0 and gt_idx.numel() == 0


def test_semantic_to_masks():
    sem = torch.tensor([[0, 0, 3], [255, 3, 3], [7, 1, 1]])
    masks, labels = semantic_to_masks(sem, num_classes=5)
    assert labels.tolist() == [0, 1, 3]
    assert masks.dtype == torch.float32 and masks.shape == (3, 3, 3)
    assert masks.sum(0)[1, 0] == 0 and masks.sum(0)[2, 0] == 0  # ignore and out-of-range are void
    assert torch.equal(masks[2], (sem == 3).float())
    empty_m, empty_l = semantic_to_masks(torch.full((4, 4), 255), 5)
    assert empty_m.shape == (0, 4, 4) and empty_l.numel() == 0


def test_perfect_vs_random_predictions():
    num_classes, k = 5, 8
    crit = KMaXCriterion(num_classes, insdis_weight=0, aux_semantic_weight=0)
    gts = [semantic_to_masks(random_semantic(num_classes=num_classes, seed=s), num_classes)
           for s in range(2)]
    perfect = [perfect_outputs(m, l, k, num_classes) for m, l in gts]
    out = dict(pred_logits=torch.stack([p[0] for p in perfect]),
               pred_masks=torch.stack([p[1] for p in perfect]))
    masks = [m for m, _ in gts]
    labels = [l for _, l in gts]
    good = crit(out, masks, labels)
    rand = crit(make_outputs(k=k, n=num_classes), masks, labels)
    assert good['loss_pq_dice'] < 1e-4 and good['loss_mask_id'] < 1e-4
    assert good['loss_pq_cls'] < 1e-4
    assert rand['loss_pq_dice'] > 100 * good['loss_pq_dice'] + 1e-3
    assert rand['loss_mask_id'] > 0.1 and rand['loss_pq_cls'] > 1e-3


def test_pq_terms_hand_computed():
    """Two slots, one GT mask of class 1, 1x4 image with the last pixel void."""
    num_classes = 2
    gt = torch.tensor([[[1., 1., 1., 0.]]])  # 1 x 1 x 4
    labels = torch.tensor([1])
    mask_logits = torch.tensor([[[2.0, 1.0, -1.0, 0.5]], [[0.0, 0.5, 1.0, -0.5]]])  # 2 x 1 x 4
    cls_logits = torch.tensor([[0.1, 1.2, -0.3], [0.4, -0.2, 0.9]])
    crit = KMaXCriterion(num_classes, class_weight=1.0, dice_weight=1.0, mask_id_weight=1.0,
                         insdis_weight=0, aux_semantic_weight=0)
    out = dict(pred_logits=cls_logits[None], pred_masks=mask_logits[None])
    losses = crit(out, [gt], [labels])

    # Manual computation.
    p = [[0.0] * 4, [0.0] * 4]
    for x in range(4):
        e0, e1 = math.exp(mask_logits[0, 0, x]), math.exp(mask_logits[1, 0, x])
        p[0][x], p[1][x] = e0 / (e0 + e1), e1 / (e0 + e1)
    g = [1, 1, 1, 0]
    pc = []
    for k in range(2):
        ex = [math.exp(v) for v in cls_logits[k].tolist()]
        pc.append([v / sum(ex) for v in ex])
    pm = [[p[k][x] * (1 if x < 3 else 0) for x in range(4)] for k in range(2)]
    dice_m = [sum(pm[k][x] * g[x] for x in range(4)) / ((sum(pm[k]) + 3) / 2 + 1e-5)
              for k in range(2)]
    cost = [-dice_m[k] * pc[k][1] for k in range(2)]
    m = 0 if cost[0] < cost[1] else 1  # matched slot
    u = 1 - m
    pred_idx, gt_idx = kmax_hungarian_match(cls_logits, mask_logits, labels, gt)
    assert pred_idx.tolist() == [m] and gt_idx.tolist() == [0]

    # class term
    void_ratio = p[u][3] / (sum(p[u]) + 1e-5)
    ce_m = -math.log(pc[m][1])
    ce_u = -math.log(pc[u][2])
    cls_expected = (0.75 * ce_m * max(dice_m[m], 1e-5) + 0.25 * ce_u * max(void_ratio, 1e-5)) / 2
    assert losses['loss_pq_cls'].item() == pytest.approx(cls_expected, rel=1e-5)

    # dice term: only the matched slot, weighted by its class prob, times 0.75 / K
    inter = 2 * sum(pm[m][x] * g[x] for x in range(4)) + 1
    den = sum(pm[m]) + 3 + 1
    dice_expected = (1 - inter / den) * max(pc[m][1], 1e-5) * 0.75 / 2
    assert losses['loss_pq_dice'].item() == pytest.approx(dice_expected, rel=1e-5)

    # mask-ID: CE of the matched slot on the 3 labelled pixels
    mid_expected = sum(-math.log(p[m][x]) for x in range(3)) / 3
    assert losses['loss_mask_id'].item() == pytest.approx(mid_expected, rel=1e-5)


def test_mask_id_equals_cross_entropy_on_labelled_pixels():
    num_classes, k, h, w = 4, 5, 8, 8
    sem = random_semantic(h, w, num_classes, seed=4)
    sem[:, :2] = 255
    masks, labels = semantic_to_masks(sem, num_classes)
    # Make the planted matching unambiguous: slot j carries GT j with a confident class.
    logits, _ = perfect_outputs(masks, labels, k, num_classes)
    pmask = torch.randn(k, h, w, generator=torch.Generator().manual_seed(0)) * 0.1
    pmask[:masks.shape[0]] += masks * 4.0
    crit = KMaXCriterion(num_classes, class_weight=0, dice_weight=0, mask_id_weight=1.0,
                         insdis_weight=0, aux_semantic_weight=0)
    losses = crit(dict(pred_logits=logits[None], pred_masks=pmask[None]), [masks], [labels])
    assert set(losses) == {'loss_mask_id'}
    pred_idx, gt_idx = kmax_hungarian_match(logits, pmask, labels, masks)
    slot_of_pixel = torch.full((h, w), -1, dtype=torch.long)
    for p, gi in zip(pred_idx.tolist(), gt_idx.tolist()):
        slot_of_pixel[masks[gi] > 0] = p
    valid = slot_of_pixel >= 0
    ref = F.cross_entropy(pmask.permute(1, 2, 0)[valid], slot_of_pixel[valid])
    torch.testing.assert_close(losses['loss_mask_id'], ref, rtol=1e-5, atol=1e-6)


def test_insdis_sampling_avoids_void_and_respects_k():
    num_classes, h, w = 4, 16, 16
    sem = random_semantic(h, w, num_classes, seed=5)
    sem[:8] = 255  # half the image void
    masks, labels = semantic_to_masks(sem, num_classes)
    crit = KMaXCriterion(num_classes, insdis_sample_k=64)
    out = make_outputs(bsz=1, k=6, n=num_classes, h=h, w=w)
    targets = crit.build_targets(out, [masks], [labels])
    void = targets['void'].flatten(1)
    assert torch.equal(targets['void'][0], sem == 255)
    torch.manual_seed(0)
    for _ in range(20):
        logits = kmax_loss._sampling_logits(targets['inverse_area'].flatten(1), void, 1.5)
        idx = kmax_loss._gumbel_topk(logits, 64)
        assert idx.shape == (1, 64)
        assert len(set(idx[0].tolist())) == 64
        assert not void[0, idx[0]].any()
    # Sampling logits use log(HW / area) >= 0 on labelled pixels.
    area = targets['inverse_area'][0]
    assert area[~targets['void'][0]].min() >= 1.0
    # sample_k larger than the image is clamped.
    big = KMaXCriterion(num_classes, insdis_sample_k=10**6, aux_semantic_sample_k=10**6)
    losses = big(out, [masks], [labels], torch.randn(1, num_classes, h, w), sem[None])
    assert all(torch.isfinite(v) for v in losses.values())


def test_insdis_matches_dense_formula():
    """With every pixel sampled, insdis equals a direct soft-target CE over all labelled pixels."""
    num_classes, h, w = 3, 4, 4
    sem = torch.tensor([[0, 0, 1, 1]] * 2 + [[2, 2, 255, 255]] * 2)
    masks, labels = semantic_to_masks(sem, num_classes)
    out = make_outputs(bsz=1, k=4, n=num_classes, h=h, w=w, c=5, seed=2)
    crit = KMaXCriterion(num_classes, class_weight=0, dice_weight=0, mask_id_weight=0,
                         insdis_sample_k=12, aux_semantic_weight=0)
    loss = crit(out, [masks], [labels])['loss_insdis']
    valid = (sem != 255).flatten()
    feat = out['pixel_feature'][0].flatten(1)[:, valid]  # C x 12
    lab = sem.flatten()[valid]
    same = (lab[:, None] == lab[None]).float()
    same = same / same.sum(1, keepdim=True)
    logp = (feat.t() @ feat / 0.3).log_softmax(1)
    ref = -(same * logp).sum(1).mean()
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)


def test_aux_semantic_all_pixels_and_stride():
    num_classes, h, w = 4, 8, 8
    sem = random_semantic(16, 16, num_classes, seed=7)
    sem[0, :] = 255
    sem_os = sem[::2, ::2]  # prediction-resolution semantic
    masks, labels = semantic_to_masks(sem_os, num_classes)
    out = make_outputs(bsz=1, k=6, n=num_classes, h=h, w=w)
    logits = torch.randn(1, num_classes, h, w)
    crit = KMaXCriterion(num_classes, class_weight=0, dice_weight=0, mask_id_weight=0,
                         insdis_weight=0, aux_semantic_sample_k=0)
    loss = crit(out, [masks], [labels], logits, sem[None])['loss_aux_sem']
    ref = F.cross_entropy(logits, sem_os[None], ignore_index=255)
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    # Odd kMaX sizes: (H - 1) // (h - 1) stride.
    assert kmax_loss._stride_subsample(torch.zeros(1, 17, 17), (5, 5)).shape == (1, 5, 5)
    x = torch.arange(17 * 17).view(1, 17, 17)
    assert torch.equal(kmax_loss._stride_subsample(x, (5, 5)), x[:, ::4, ::4])


def test_image_without_gt_is_finite_and_differentiable():
    num_classes = 4
    out = make_outputs(bsz=2, k=5, n=num_classes, h=8, w=8, num_aux=2, requires_grad=True)
    sem = random_semantic(8, 8, num_classes, seed=0)
    m0, l0 = semantic_to_masks(sem, num_classes)
    m1, l1 = semantic_to_masks(torch.full((8, 8), 255), num_classes)
    gt_sem = torch.stack([sem, torch.full((8, 8), 255)])
    crit = KMaXCriterion(num_classes, insdis_sample_k=16, aux_semantic_sample_k=16)
    aux_logits = torch.randn(2, num_classes, 8, 8, requires_grad=True)
    losses = crit(out, [m0, m1], [l0, l1], aux_logits, gt_sem)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert torch.isfinite(out['pred_masks'].grad).all()
    # An all-void batch: every mask-based loss is 0 but still attached to the graph.
    out2 = make_outputs(bsz=1, k=5, n=num_classes, h=8, w=8, requires_grad=True)
    losses2 = crit(out2, [m1], [l1], aux_logits[1:], gt_sem[1:])
    for key in ('loss_pq_dice', 'loss_mask_id', 'loss_insdis', 'loss_aux_sem'):
        assert losses2[key].item() == 0 and losses2[key].requires_grad
    assert torch.isfinite(losses2['loss_pq_cls']) and losses2['loss_pq_cls'] > 0
    sum(losses2.values()).backward()


def test_aux_keys_weights_and_backward():
    num_classes = 5
    out = make_outputs(bsz=2, k=6, n=num_classes, num_aux=3, requires_grad=True)
    gts = [semantic_to_masks(random_semantic(num_classes=num_classes, seed=s), num_classes)
           for s in range(2)]
    gt_sem = torch.stack([random_semantic(num_classes=num_classes, seed=s) for s in range(2)])
    crit = MODELS.build(dict(type='mmmask.KMaXCriterion', num_classes=num_classes, insdis_sample_k=32,
                             aux_semantic_sample_k=32))
    aux_logits = torch.randn(2, num_classes, 16, 16, requires_grad=True)
    losses = crit(out, [g[0] for g in gts], [g[1] for g in gts], aux_logits, gt_sem)
    names = ['loss_pq_cls', 'loss_pq_dice', 'loss_mask_id', 'loss_insdis']
    expected = set(names + ['loss_aux_sem'])
    for i in range(3):
        expected |= {f'd{i}.{n}' for n in names}
    assert set(losses) == expected
    sum(losses.values()).backward()
    for d in [out] + out['aux_outputs']:
        for key in ('pred_logits', 'pred_masks', 'pixel_feature'):
            assert d[key].grad is not None and torch.isfinite(d[key].grad).all()
    assert aux_logits.grad is not None

    # Weights scale the terms; zero drops the key; aux outputs share the final matching.
    torch.manual_seed(0)
    unit = KMaXCriterion(num_classes, 1.0, 1.0, 1.0, 0.0, 0.0)
    l1 = unit(out, [g[0] for g in gts], [g[1] for g in gts])
    assert 'loss_insdis' not in l1 and 'loss_aux_sem' not in l1
    l3 = KMaXCriterion(num_classes, 3.0, 3.0, 0.3, 0.0, 0.0)(
        out, [g[0] for g in gts], [g[1] for g in gts])
    torch.testing.assert_close(l3['loss_pq_cls'], 3 * l1['loss_pq_cls'])
    torch.testing.assert_close(l3['d1.loss_mask_id'], 0.3 * l1['d1.loss_mask_id'])
    # An aux output identical to the final one gives identical losses.
    same = dict(out, aux_outputs=[{k: v for k, v in out.items() if k != 'aux_outputs'}])
    ls = unit(same, [g[0] for g in gts], [g[1] for g in gts])
    for n in ('loss_pq_cls', 'loss_pq_dice', 'loss_mask_id'):
        torch.testing.assert_close(ls[n], ls[f'd0.{n}'])


# ---------------------------------------------------------------------------------------------
def test_silog_relsqr():
    torch.manual_seed(0)
    target = torch.rand(2, 1, 8, 8) * 5 + 0.5
    target[0, 0, :2] = 0  # invalid pixels
    loss_fn = SILogRelSqrLoss()
    assert loss_fn.loss_name == 'loss_depth'
    silog, relsqr, has = loss_fn.per_image_terms(target.clone(), target)
    assert silog.abs().max() < 1e-6 and relsqr.abs().max() < 1e-6 and has.all()
    silog, relsqr, _ = loss_fn.per_image_terms(target * 1.7, target)
    assert silog.abs().max() < 1e-5  # scale-invariant
    torch.testing.assert_close(relsqr, torch.full((2, ), 0.7))
    # Invalid (zero) target pixels are ignored whatever the prediction there.
    pred = target * 1.3
    pred2 = pred.clone()
    pred2[0, 0, :2] = 100.0
    torch.testing.assert_close(loss_fn(pred, target), loss_fn(pred2, target))
    # Combined value and weights.
    pred = (torch.rand(2, 1, 8, 8) * 5 + 0.5).requires_grad_(True)
    s, r, _ = loss_fn.per_image_terms(pred, target)
    w = SILogRelSqrLoss(silog_weight=2.0, relsqr_weight=0.5, loss_weight=3.0)
    torch.testing.assert_close(w(pred, target), 3.0 * (2.0 * s + 0.5 * r).mean())
    w(pred, target).backward()
    assert torch.isfinite(pred.grad).all()
    # No valid pixel: 0, finite gradient; perfect prediction: finite gradient.
    p0 = torch.rand(1, 1, 4, 4, requires_grad=True)
    z = loss_fn(p0, torch.zeros(1, 1, 4, 4))
    z.backward()
    assert z.item() == 0 and torch.isfinite(p0.grad).all()
    p1 = target.clone().requires_grad_(True)
    loss_fn(p1, target).backward()
    assert torch.isfinite(p1.grad).all()


def test_normal_losses():
    torch.manual_seed(0)
    gt = F.normalize(torch.randn(2, 3, 6, 6), dim=1)
    gt[0, :, :2] = 0  # invalid
    ang = NormalAngularLoss()
    assert ang.loss_name == 'loss_normal'
    pred = gt.clone().requires_grad_(True)
    loss = ang(pred, gt)
    assert loss.item() < 2e-3  # acos(1 - 1e-6) ~ 1.4e-3
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    # Orthogonal unit normals: pi / 2.
    z = torch.zeros(1, 3, 4, 4)
    ex, ey = z.clone(), z.clone()
    ex[:, 0] = 1
    ey[:, 1] = 1
    torch.testing.assert_close(ang(ex, ey), torch.tensor(math.pi / 2))
    torch.testing.assert_close(NormalAngularLoss(mode='cosine')(ex, ey), torch.tensor(1.0))
    torch.testing.assert_close(NormalAngularLoss(mode='l2')(ex, ey), torch.tensor(2.0))
    assert NormalAngularLoss(mode='cosine')(gt, gt).abs() < 1e-6
    # Invalid target pixels ignored; unnormalised predictions are normalised.
    pred2 = gt.clone()
    pred2[0, :, :2] = torch.randn(3, 2, 6)
    torch.testing.assert_close(ang(pred2 * 3.0, gt), ang(gt, gt))
    # No valid pixel: 0.
    assert ang(ex, z).item() == 0
    assert NormalAngularLoss(loss_weight=2.0)(ex, ey).item() == pytest.approx(math.pi)
