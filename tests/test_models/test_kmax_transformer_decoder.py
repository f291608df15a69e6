"""kMaX-DeepLab transformer decoder, predictor and auxiliary semantic head (small sizes)."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmmask.models.layers import (KMaXAuxSemanticHead, KMaXPredictor, KMaXTransformerDecoder,
                                  KMaXTransformerLayer)
from mmmask.registry import MODELS

IN = (24, 20, 12)
OS4 = 10
SMALL = dict(in_channels=IN, os4_channels=OS4, num_layers=(2, 2, 2), num_clusters=8,
             num_outputs=5, channels=32, key_channels=16, ffn_channels=64, num_heads=4,
             mask_channels=16)


def build(**kw):
    cfg = dict(SMALL)
    cfg.update(kw)
    return MODELS.build(dict(type='mmmask.KMaXTransformerDecoder', **cfg))


def inputs(b=2, h=2, w=2):
    torch.manual_seed(1)
    ms = [torch.randn(b, c, h * s, w * s) for c, s in zip(IN, (1, 2, 4))]
    return ms, torch.randn(b, OS4, h * 8, w * 8)


def set_residual_gammas(module, value=1.0):
    """The gamma-0 norms make every residual branch vanish at init; switch them on."""
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            torch.nn.init.constant_(m.weight, value)


@pytest.mark.parametrize('hw', [(2, 2), (2, 3)])
def test_decoder_shapes(hw):
    dec = build()
    assert isinstance(dec, KMaXTransformerDecoder)
    ms, os4 = inputs(2, *hw)
    out = dec(ms, os4)
    h4, w4 = os4.shape[-2:]
    assert out['pred_logits'].shape == (2, 8, 5)
    assert out['pred_masks'].shape == (2, 8, h4, w4)
    assert out['pixel_feature'].shape == (2, 16, h4, w4)
    assert out['cluster_embed'].shape == (2, 32, 8)
    assert len(out['aux_outputs']) == 6
    for aux in out['aux_outputs']:
        assert aux['pred_logits'].shape == (2, 8, 5)
        assert aux['pred_masks'].shape == (2, 8, h4, w4)
        assert aux['pixel_feature'].shape == (2, 16, h4, w4)
        assert aux['cluster_embed'].shape == (2, 32, 8)
    # the first layer's prediction comes from the learnable centres, tiled over the batch
    first = out['aux_outputs'][0]['cluster_embed']
    assert torch.equal(first[0], dec.cluster_centers) and torch.equal(first[1], dec.cluster_centers)
    # the final unit-norm pixel embedding
    norms = out['pixel_feature'].norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms), atol=1e-5, rtol=0)


def test_aux_pixel_feature_resized_not_renormalised():
    dec = build(num_layers=(0, 0, 1)).eval()
    ms, os4 = inputs(1, 2, 3)
    captured = {}
    dec.layers[0].predictor.register_forward_hook(lambda m, i, o: captured.update(o))
    out = dec(ms, os4)
    ref = F.interpolate(captured['pixel_feature'], size=os4.shape[-2:], mode='bilinear',
                        align_corners=False)
    torch.testing.assert_close(out['aux_outputs'][0]['pixel_feature'], ref)
    ref_masks = F.interpolate(captured['pred_masks'], size=os4.shape[-2:], mode='bilinear',
                              align_corners=False)
    torch.testing.assert_close(out['aux_outputs'][0]['pred_masks'], ref_masks)


def test_void_bias():
    torch.manual_seed(0)
    with_void = KMaXPredictor(6, channels=32, mask_channels=16, num_outputs=5, void_prior=0.9)
    plain = KMaXPredictor(6, channels=32, mask_channels=16, num_outputs=5, void_prior=None)
    plain.load_state_dict(with_void.state_dict())
    with_void.eval()
    plain.eval()
    emb = torch.randn(2, 32, 8)
    pix = torch.randn(2, 6, 4, 5)
    a = with_void(emb, emb, pix)['pred_logits']
    b = plain(emb, emb, pix)['pred_logits']
    torch.testing.assert_close(a[..., :-1], b[..., :-1])
    torch.testing.assert_close(a[..., -1] - b[..., -1],
                               torch.full_like(a[..., -1], math.log(4 * 0.9 / 0.1)))
    # void_prior=None: a plain linear read-out, also for a single output
    one = KMaXPredictor(6, channels=32, mask_channels=16, num_outputs=1, void_prior=None).eval()
    out = one(emb, emb, pix)['pred_logits']
    conv = one.class_head.conv
    torch.testing.assert_close(out, (conv(emb)).transpose(1, 2))
    assert out.shape == (2, 8, 1)
    with pytest.raises(ValueError, match='void_prior'):
        KMaXPredictor(6, channels=32, num_outputs=1, void_prior=0.9)


def test_kmeans_update_is_sum_over_assigned_pixels():
    torch.manual_seed(0)
    b, k, c, n = 2, 5, 7, 30
    labels = torch.randint(0, k, (b, n))
    assignment = F.one_hot(labels, k).transpose(1, 2).float()  # (B, K, N)
    values = torch.randn(b, c, n)
    upd = KMaXTransformerLayer.kmeans_update(assignment, values)
    expected = torch.zeros(b, c, k)
    for bi in range(b):
        for p in range(n):
            expected[bi, :, labels[bi, p]] += values[bi, :, p]
    torch.testing.assert_close(upd, expected)


def test_layer_reproduces_kmeans_step():
    """The tensor entering the update-branch norm is the sum over argmax-assigned pixels."""
    torch.manual_seed(0)
    layer = KMaXTransformerLayer(12, channels=32, key_channels=16, ffn_channels=64, num_heads=2,
                                 num_outputs=5, mask_channels=16)
    cap = {}
    layer.predictor.register_forward_hook(lambda m, i, o: cap.update(pred=o))
    layer.pixel_value.register_forward_hook(lambda m, i, o: cap.update(value=o))
    layer.kmeans_norm.register_forward_hook(lambda m, i, o: cap.update(update=i[0]))
    pixel, query = torch.randn(2, 12, 4, 6), torch.randn(2, 32, 8)
    new_query, pred = layer(pixel, query)
    assert new_query.shape == query.shape
    labels = cap['pred']['pred_masks'].flatten(2).argmax(1)  # (B, HW)
    values = cap['value'].flatten(2)
    expected = torch.zeros(2, 32, 8)
    for bi in range(2):
        for kk in range(8):
            sel = labels[bi] == kk
            expected[bi, :, kk] = values[bi][:, sel].sum(1)
    torch.testing.assert_close(cap['update'], expected, atol=1e-4, rtol=1e-5)


def test_assignment_is_one_hot_without_grad():
    logits = torch.randn(2, 8, 3, 5, requires_grad=True)
    a = KMaXTransformerLayer.kmeans_assignment(logits)
    assert a.shape == (2, 8, 15) and not a.requires_grad
    assert torch.equal(a.sum(1), torch.ones(2, 15))
    assert torch.equal(a.argmax(1), logits.flatten(2).argmax(1))
    assert set(a.unique().tolist()) <= {0.0, 1.0}


def test_gradients():
    dec = build()
    set_residual_gammas(dec)
    ms, os4 = inputs(2, 2, 3)
    out = dec(ms, os4)
    # final outputs only: the per-layer predictors feed nothing but the no-grad argmax
    (out['pred_masks'].square().mean() + out['pred_logits'].square().mean()).backward()
    assert dec.cluster_centers.grad is not None and dec.cluster_centers.grad.abs().sum() > 0
    for p in dec.predictor.parameters():
        assert p.grad is not None
    assert all(p.grad is None for p in dec.layers[0].predictor.parameters())
    # the k-means update branch (pixel values) is trained through the centres
    assert dec.layers[0].pixel_value.conv.weight.grad.abs().sum() > 0
    # deep supervision reaches the per-layer predictors
    dec.zero_grad(set_to_none=True)
    out = dec(ms, os4)
    sum(a['pred_masks'].square().mean() + a['pred_logits'].square().mean()
        for a in out['aux_outputs']).backward()
    for layer in dec.layers:
        assert layer.predictor.pixel_out.conv.weight.grad.abs().sum() > 0
        assert layer.predictor.class_head.conv.weight.grad.abs().sum() > 0


def test_drop_path_train_and_eval():
    dec = build(drop_path_rate=0.5)
    set_residual_gammas(dec)
    ms, os4 = inputs(2, 2, 2)
    dec.train()
    torch.manual_seed(0)
    a = dec(ms, os4)
    torch.manual_seed(1)
    b = dec(ms, os4)
    assert not torch.allclose(a['pred_masks'], b['pred_masks'])
    (a['pred_masks'].mean() + a['pred_logits'].mean()).backward()
    assert dec.cluster_centers.grad is not None
    dec.eval()
    with torch.no_grad():
        c, d = dec(ms, os4), dec(ms, os4)
    assert torch.equal(c['pred_masks'], d['pred_masks'])
    assert torch.equal(c['pred_logits'], d['pred_logits'])


def test_input_validation():
    dec = build()
    ms, os4 = inputs()
    with pytest.raises(ValueError, match='multi-scale'):
        dec(ms[:2], os4)
    with pytest.raises(ValueError, match='channels'):
        dec([ms[0], ms[2], ms[1]], os4)
    with pytest.raises(ValueError, match='os4'):
        dec(ms, os4[:, :3])
    with pytest.raises(ValueError, match='batch'):
        dec(ms, os4[:1])
    with pytest.raises(ValueError, match='same length'):
        build(num_layers=(2, 2))
    with pytest.raises(ValueError, match='divisible'):
        build(num_heads=3)


@pytest.mark.parametrize('size,res5', [((8, 8), (2, 2)), ((6, 10), (2, 3))])
def test_aux_semantic_head(size, res5):
    head = MODELS.build(dict(type='mmmask.KMaXAuxSemanticHead', in_channels=(24, 12, 10),
                             num_outputs=5, channels=32, low_level_channels=(8, 4)))
    assert isinstance(head, KMaXAuxSemanticHead)
    h, w = size
    feats = [torch.randn(2, 24, *res5), torch.randn(2, 12, h // 2, w // 2),
             torch.randn(2, 10, h, w)]
    out = head(feats)
    assert out.shape == (2, 5, h, w)
    out.mean().backward()
    assert head.aspp.branches[1].conv.weight.grad is not None
    head.eval()
    with torch.no_grad():
        torch.testing.assert_close(head(feats), head(feats))
    with pytest.raises(ValueError, match='channels'):
        head([feats[0], feats[2], feats[1]])
