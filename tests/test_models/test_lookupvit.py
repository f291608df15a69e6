"""LookupViT: the bidirectional cross attention (A is M×N, Aᵀ reuse), grids, outputs, FLOPs."""
import pytest
import torch
import torch.nn.functional as F

from mmmask.models.backbones.lookupvit import (BidirectionalCrossAttention, LookupViT,
                                               count_forward_flops, lookupvit_flops, vit_flops)
from mmmask.registry import MODELS

# mmpretrain classifiers built here resolve their default data preprocessor in the current scope
pytestmark = pytest.mark.usefixtures('mmpretrain_scope')

TINY = dict(embed_dims=32, num_layers=2, num_heads=4)


def tiny(**kwargs):
    torch.manual_seed(0)
    model = LookupViT(arch=TINY, img_size=64, patch_size=8, **kwargs)
    model.init_weights()
    return model.eval()


def heads(x, h):
    b, n, c = x.shape
    return x.view(b, n, h, c // h).transpose(1, 2)


def reference_mhbc(mod: BidirectionalCrossAttention, p, l):
    """The MHBC formulas written out with the module's weights."""
    h, d = mod.num_heads, mod.head_dims
    wk, wv = mod.kv.weight.chunk(2, 0)
    bk, bv = mod.kv.bias.chunk(2, 0)
    q = heads(p @ mod.q.weight.T + mod.q.bias, h)
    k = heads(l @ wk.T + bk, h)
    v = heads(l @ wv.T + bv, h)
    a = torch.softmax(q @ k.transpose(-1, -2) / d**0.5, dim=-1)  # (B, h, M, N)
    gathered = (a @ v).transpose(1, 2).flatten(2) @ mod.proj.weight.T + mod.proj.bias
    v_p = heads(p @ mod.v_rev.weight.T + mod.v_rev.bias, h)
    rev = a.transpose(-1, -2)
    if mod.reverse_norm == 'lookup':
        rev = rev / rev.sum(-1, keepdim=True)
    scattered = (rev @ v_p).transpose(1, 2).flatten(2) @ mod.proj_rev.weight.T \
        + mod.proj_rev.bias
    return a, gathered, scattered


@pytest.mark.parametrize('reverse_norm', ['none', 'lookup'])
def test_attention_shape_and_transpose_reuse(reverse_norm):
    torch.manual_seed(0)
    mod = BidirectionalCrossAttention(32, 4, reverse_norm=reverse_norm).eval()
    for param in mod.parameters():
        torch.nn.init.normal_(param, std=0.2)
    p, l = torch.randn(2, 9, 32), torch.randn(2, 35, 32)
    gathered, attn = mod.gather(p, l)
    assert attn.shape == (2, 4, 9, 35)  # (B, heads, M, N)
    assert torch.allclose(attn.sum(-1), torch.ones(2, 4, 9), atol=1e-6)
    ref_a, ref_g, ref_s = reference_mhbc(mod, p, l)
    torch.testing.assert_close(attn, ref_a, rtol=0, atol=1e-6)
    torch.testing.assert_close(gathered, ref_g, rtol=0, atol=1e-5)
    scattered = mod.scatter(p, attn)
    assert scattered.shape == (2, 35, 32)
    torch.testing.assert_close(scattered, ref_s, rtol=0, atol=1e-5)
    rev = mod.reverse_map(attn)
    if reverse_norm == 'none':  # the paper's reuse: exactly the transposed softmax map
        assert torch.equal(rev, attn.transpose(-1, -2))
        assert not torch.allclose(rev.sum(-1), torch.ones(2, 4, 35))
    else:
        torch.testing.assert_close(rev.sum(-1), torch.ones(2, 4, 35))


def test_block_reuses_the_gather_map():
    """Inside a block, the lookup update is Aᵀ V_p with the very map of the gather step."""
    model = tiny(compressed_grid=(3, 3))
    block = model.layers[0]
    for param in block.parameters():
        torch.nn.init.normal_(param, std=0.1)
    p, l, _, _ = model.tokens(torch.randn(2, 3, 64, 64))
    new_p, new_l, attn = block(p, l, return_attn=True)
    assert attn.shape == (2, 4, 9, 64)
    _, gathered, _ = reference_mhbc(block.mhbc, block.norm_p(p), block.norm_l(l))
    p_ref = block.compressed(p + gathered)
    torch.testing.assert_close(new_p, p_ref, rtol=0, atol=1e-5)
    _, _, scattered = reference_mhbc(block.mhbc, block.norm_rev(p_ref), block.norm_l(l))
    # `scattered` recomputes A from (p_ref, l) — a different map; the block must use the old one
    v = heads(block.mhbc.v_rev(block.norm_rev(p_ref)), 4)
    manual = block.mhbc.proj_rev((attn.transpose(-1, -2) @ v).transpose(1, 2).flatten(2))
    l_mid = l + manual
    l_ref = l_mid + block.mlp_l(block.norm_mlp_l(l_mid))
    torch.testing.assert_close(new_l, l_ref, rtol=0, atol=1e-5)
    assert not torch.allclose(new_l, l + scattered + block.mlp_l(block.norm_mlp_l(l + scattered)),
                              atol=1e-4)


def test_compressed_tokens_are_the_resized_lookup_grid():
    model = tiny(compressed_grid=(3, 3), resize_antialias=False)
    x = torch.randn(1, 3, 64, 96)
    p, l, grid_p, grid_l = model.tokens(x)
    assert grid_l == (8, 12) and grid_p == (3, 3)
    pos = F.interpolate(model.pos_embed, size=(8, 12), mode='bicubic', align_corners=False)
    lmap = model.patch_embed(x) + pos
    torch.testing.assert_close(l, lmap.flatten(2).transpose(1, 2))
    pmap = F.interpolate(lmap, size=(3, 3), mode='bilinear', align_corners=False)
    torch.testing.assert_close(p, pmap.flatten(2).transpose(1, 2))


def test_same_weights_several_grids():
    model = tiny(compressed_grid=[(5, 5), (3, 3)], out_indices=(0, 1),
                 out_type='compressed_featmap')
    x = torch.randn(2, 3, 64, 64)
    n_params = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        assert [o.shape for o in model(x)] == [(2, 32, 5, 5)] * 2  # test grid = first
        for grid in [(3, 3), (5, 5), (7, 7), (2, 4)]:
            outs = model(x, compressed_grid=grid)
            assert [tuple(o.shape) for o in outs] == [(2, 32, *grid)] * 2
            assert torch.isfinite(outs[-1]).all()
        model.set_compressed_grid(7)
        assert model(x)[0].shape == (2, 32, 7, 7)
    assert sum(p.numel() for p in model.parameters()) == n_params
    model.out_type = 'both'
    with torch.no_grad():
        pooled = [model(x, compressed_grid=g)[-1] for g in [(3, 3), (5, 5), (7, 7)]]
    assert all(o.shape == (2, 32) for o in pooled)
    assert not torch.allclose(pooled[0], pooled[2])  # M changes the features (same weights)


def test_multi_resolution_training_draws_grids():
    model = tiny(compressed_grid=[(2, 2), (3, 3), (4, 4)], out_type='compressed_featmap').train()
    seen = {tuple(model(torch.randn(1, 3, 64, 64))[0].shape[-2:]) for _ in range(40)}
    assert seen == {(2, 2), (3, 3), (4, 4)}
    model.eval()
    assert model(torch.randn(1, 3, 64, 64))[0].shape[-2:] == (2, 2)


@pytest.mark.parametrize('out_type,shape', [('both', (32, )), ('compressed', (32, )),
                                            ('lookup', (32, )), ('featmap', (32, 8, 12)),
                                            ('compressed_featmap', (32, 3, 3))])
def test_out_types(out_type, shape):
    model = tiny(compressed_grid=3, out_type=out_type)
    with torch.no_grad():
        out, = model(torch.randn(1, 3, 64, 96))
    assert tuple(out.shape[1:]) == shape


def test_pooled_outputs_use_final_norms():
    model = tiny(compressed_grid=3, out_type='both')
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        both, = model(x)
        model.out_type = 'compressed'
        comp, = model(x)
        model.out_type = 'lookup'
        look, = model(x)
    torch.testing.assert_close(both, 0.5 * (comp + look))


def test_errors():
    with pytest.raises(ValueError, match='valid'):
        LookupViT(arch='huge-ish')
    with pytest.raises(ValueError, match='misses'):
        LookupViT(arch=dict(embed_dims=32))
    with pytest.raises(ValueError, match='out_type'):
        LookupViT(arch=TINY, out_type='cls_token')
    with pytest.raises(ValueError, match='out of range'):
        LookupViT(arch=TINY, out_indices=(5, ))
    with pytest.raises(ValueError, match='patch'):
        tiny()(torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match='reverse_norm'):
        BidirectionalCrossAttention(32, 4, reverse_norm='rows')


def test_flops_formula_matches_flop_counter():
    model = tiny(compressed_grid=3, out_type='featmap')
    x = torch.randn(2, 3, 64, 96)
    patch = 2 * (8 * 12) * 32 * 3 * 64
    assert count_forward_flops(model, x) == 2 * lookupvit_flops(32, 2, 96, 9) + 2 * patch
    # paper setting: ViT-B/16 at 224 px (N = 196) vs LookupViT-B with a 5x5 / 10x10 grid
    vit = vit_flops(768, 12, 196)
    assert lookupvit_flops(768, 12, 196, 25) < 0.5 * vit
    assert lookupvit_flops(768, 12, 196, 100) < vit


def test_image_classifier():
    model = MODELS.build(dict(
        type='mmpretrain.ImageClassifier',
        backbone=dict(type='mmmask.LookupViT', arch=TINY, img_size=32, patch_size=4,
                      compressed_grid=[(3, 3), (4, 4)]),
        head=dict(type='mmpretrain.LinearClsHead', num_classes=10, in_channels=32)))
    model.init_weights()
    losses = model(torch.randn(4, 3, 32, 32), [_sample(i) for i in range(4)], mode='loss')
    assert torch.isfinite(losses['loss'])
    losses['loss'].backward()


def _sample(label):
    from mmpretrain.structures import DataSample
    return DataSample().set_gt_label(label)


def test_conv_tokenizer():
    model = tiny(compressed_grid=2, tokenizer='conv', out_type='featmap')
    assert len(model.patch_embed) == 3 * 3 + 1  # 3x3 conv + three stride-2 convs (BN, GELU)
    with torch.no_grad():
        out, = model(torch.randn(2, 3, 64, 96))
    assert out.shape == (2, 32, 8, 12)
    with pytest.raises(ValueError, match='power-of-two'):
        LookupViT(arch=TINY, patch_size=6, tokenizer='conv')
    with pytest.raises(ValueError, match='tokenizer'):
        LookupViT(arch=TINY, tokenizer='linear')
