"""kMaX-DeepLab pixel decoder: shapes, RPE indexing, zero-init residuals, axial attention."""
import pytest
import torch
import torch.nn.functional as F

from mmmask.models.layers import (AxialAttention1d, AxialAttention2d, KMaXBlock, KMaXPixelDecoder,
                                  relative_distance_index)
from mmmask.registry import MODELS

IN_CHANNELS = (8, 12, 16, 24)
DIMS = (32, 16, 8, 8)


def make_feats(h, w, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, h // s, w // s, generator=g)
            for c, s in zip(IN_CHANNELS, (4, 8, 16, 32))]


def small_decoder(**kwargs):
    cfg = dict(type='mmmask.KMaXPixelDecoder', in_channels=IN_CHANNELS, dims=DIMS,
               num_blocks=(1, 2, 1, 1), num_heads=2)
    cfg.update(kwargs)
    return MODELS.build(cfg)


@pytest.mark.parametrize('size', [(64, 64), (64, 96)])
@pytest.mark.parametrize('in_norm', [True, False])
def test_output_shapes(size, in_norm):
    torch.manual_seed(0)
    dec = small_decoder(in_norm=in_norm)
    assert isinstance(dec, KMaXPixelDecoder)
    assert dec.out_channels == (128, 64, 32, 32)
    h, w = size
    feats = make_feats(h, w)
    multi_scale, os4, semantic = dec(feats)
    assert len(multi_scale) == 3
    for feat, c, s in zip(multi_scale, dec.out_channels[:3], (32, 16, 8)):
        assert feat.shape == (2, c, h // s, w // s)
    assert os4.shape == (2, dec.out_channels[3], h // 4, w // 4)
    # the raw (pre in_norm) res5, res3, res2
    assert [t is f for t, f in zip(semantic, (feats[3], feats[1], feats[0]))] == [True] * 3
    assert all(torch.isfinite(t).all() for t in multi_scale + [os4])
    if not in_norm:
        assert not any(p.ndim == 1 and 'in_norms' in n for n, p in dec.named_parameters())


def test_backward_reaches_rpe_tables():
    torch.manual_seed(0)
    dec = small_decoder()
    multi_scale, os4, _ = dec(make_feats(64, 96))
    loss = sum(t.pow(2).mean() for t in multi_scale) + os4.pow(2).mean()
    loss.backward()
    rpe = [(n, p) for n, p in dec.named_parameters() if n.endswith('rpe.embedding')]
    assert len(rpe) == 3 * 2 * 3  # (q, k, v) x (height, width) x 3 axial blocks
    # the last BN of each branch starts at gamma 0, so at step 0 no gradient reaches the attention;
    # give those BNs a scale to check that gradients do flow into every RPE table
    assert all(p.grad is None or p.grad.abs().sum() == 0 for _, p in rpe)
    for m in dec.modules():
        if isinstance(m, KMaXBlock):
            torch.nn.init.constant_(m.conv3.bn.weight, 1.0)
    dec.zero_grad()
    multi_scale, os4, _ = dec(make_feats(64, 96))
    (sum(t.pow(2).mean() for t in multi_scale) + os4.pow(2).mean()).backward()
    for name, p in rpe:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_relative_index_matches_bruteforce():
    for length, span in ((1, 5), (7, 7), (13, 255), (4, 9)):
        idx = relative_distance_index(length, span)
        assert idx.shape == (length, length) and idx.dtype == torch.long
        for q in range(length):
            for k in range(length):
                assert idx[q, k].item() == k - q + span - 1
        assert idx.min() >= 0 and idx.max() <= 2 * span - 2
    # the gathered embeddings follow the index
    attn = AxialAttention1d(4, 4, 4, num_heads=2, max_span=9)
    emb = attn.query_rpe(5)
    table = attn.query_rpe.embedding
    for q in range(5):
        for k in range(5):
            torch.testing.assert_close(emb[q, k], table[k - q + 8])


def test_length_exceeding_max_span_raises():
    with pytest.raises(ValueError, match='max_span'):
        relative_distance_index(10, 9)
    attn = AxialAttention1d(4, 4, 4, num_heads=2, max_span=6)
    attn(torch.randn(2, 4, 6))  # exactly max_span is fine
    with pytest.raises(ValueError, match='max_span'):
        attn(torch.randn(2, 4, 7))
    dec = small_decoder(max_span=3)  # OS16 width 96 / 16 = 6 > 3
    with pytest.raises(ValueError, match='max_span'):
        dec(make_feats(64, 96))


@pytest.mark.parametrize('block_type', ['axial', 'bottleneck'])
@pytest.mark.parametrize('in_channels', [16, 32])  # projection / identity shortcut
def test_fresh_block_equals_shortcut(block_type, in_channels):
    torch.manual_seed(0)
    block = KMaXBlock(in_channels, 8, block_type, num_heads=2)
    assert torch.all(block.conv3.bn.weight == 0)
    x = torch.randn(2, in_channels, 6, 5)
    for mode in (True, False):
        block.train(mode)
        with torch.no_grad():
            expected = block.shortcut(F.gelu(x))
            out = block(x)
        torch.testing.assert_close(out, expected)
    if in_channels == 32:
        torch.testing.assert_close(out, F.gelu(x))


def test_decoder_residual_branches_zero_init():
    dec = small_decoder()
    blocks = [m for m in dec.modules() if isinstance(m, KMaXBlock)]
    assert len(blocks) == 5
    for b in blocks:
        assert torch.all(b.conv3.bn.weight == 0)
        assert b.conv1.bn.eps == 1e-3 and b.conv1.bn.momentum == 0.01
    for m in dec.in_norms:
        assert m.eps == 1e-6


def test_eval_deterministic_and_runtime_lengths():
    torch.manual_seed(0)
    dec = small_decoder()
    dec.train()
    dec(make_feats(64, 64))  # populate BN statistics and the index caches (lengths 2, 4)
    dec.eval()
    with torch.no_grad():
        feats = make_feats(64, 96, seed=1)
        a = dec(feats)
        b = dec(feats)
        # a different runtime size after the cache was filled, then back
        c = dec(make_feats(96, 64, seed=2))
        d = dec(feats)
    for x, y in zip(a[0] + [a[1]], b[0] + [b[1]]):
        assert torch.equal(x, y)
    for x, y in zip(a[0] + [a[1]], d[0] + [d[1]]):
        assert torch.equal(x, y)
    assert c[1].shape == (2, 32, 24, 16)
    attn = dec.stages[0][0].attention.height_axis
    lengths = {k[0] for k in attn.query_rpe._index_cache}
    assert {2, 3} <= lengths
    assert not any('_index_cache' in k for k in dec.state_dict())


def _naive_axial_1d(attn, x):
    """Loop reference for an eval-mode AxialAttention1d (BN = per-channel affine)."""

    def bn(m, t, ch_dim):
        shape = [1] * t.dim()
        shape[ch_dim] = -1
        scale = m.weight / torch.sqrt(m.running_var + m.eps)
        shift = m.bias - m.running_mean * scale
        return t * scale.view(shape) + shift.view(shape)

    n, _, length = x.shape
    h, dk, dv = attn.num_heads, attn.key_channels, attn.value_channels
    dkh, dvh, span = dk // h, dv // h, attn.max_span
    qkv = bn(attn.qkv_norm, torch.einsum('oc,ncl->nol', attn.qkv.weight[..., 0], x), 1)
    q, k, v = qkv[:, :dk], qkv[:, dk:2 * dk], qkv[:, 2 * dk:]
    rq, rk, rv = (m.embedding for m in (attn.query_rpe, attn.key_rpe, attn.value_rpe))
    out = torch.zeros(n, dv, length)
    for b in range(n):
        for head in range(h):
            qh, kh = q[b, head * dkh:(head + 1) * dkh], k[b, head * dkh:(head + 1) * dkh]
            vh = v[b, head * dvh:(head + 1) * dvh]
            sim = torch.zeros(3, length, length)
            for i in range(length):
                for j in range(length):
                    r = j - i + span - 1
                    sim[0, i, j] = qh[:, i] @ kh[:, j]
                    sim[1, i, j] = qh[:, i] @ rq[r]
                    sim[2, i, j] = kh[:, j] @ rk[r]
            m = attn.similarity_norm
            for g in range(3):
                c = g * h + head
                sim[g] = (sim[g] - m.running_mean[c]) / torch.sqrt(m.running_var[c] + m.eps) \
                    * m.weight[c] + m.bias[c]
            w = sim.sum(0).softmax(-1)
            for i in range(length):
                content = sum(w[i, j] * vh[:, j] for j in range(length))
                pos = sum(w[i, j] * rv[j - i + span - 1] for j in range(length))
                for g, val in enumerate((content, pos)):
                    sl = slice(g * dv + head * dvh, g * dv + (head + 1) * dvh)
                    mo = attn.output_norm
                    out[b, head * dvh:(head + 1) * dvh, i] += (
                        (val - mo.running_mean[sl]) / torch.sqrt(mo.running_var[sl] + mo.eps)
                        * mo.weight[sl] + mo.bias[sl])
    return out


def test_axial_attention_matches_naive_loop():
    torch.manual_seed(0)
    attn = AxialAttention1d(6, 4, 8, num_heads=2, max_span=7).eval()
    for m in (attn.qkv_norm, attn.similarity_norm, attn.output_norm):  # non-trivial BN stats
        m.running_mean.uniform_(-0.5, 0.5)
        m.running_var.uniform_(0.5, 2.0)
        m.weight.data.uniform_(0.5, 1.5)
        m.bias.data.uniform_(-0.5, 0.5)
    x = torch.randn(2, 6, 5)
    with torch.no_grad():
        torch.testing.assert_close(attn(x), _naive_axial_1d(attn, x), atol=1e-5, rtol=1e-4)


def test_axial_2d_is_height_then_width():
    torch.manual_seed(0)
    attn = AxialAttention2d(6, 4, 8, num_heads=2, max_span=9).eval()
    x = torch.randn(2, 6, 5, 7)
    with torch.no_grad():
        out = attn(x)
        cols = attn.height_axis(x.permute(0, 3, 1, 2).reshape(14, 6, 5))  # (N*W, Cv, H)
        cols = cols.reshape(2, 7, 8, 5).permute(0, 2, 3, 1)  # (N, Cv, H, W)
        rows = attn.width_axis(cols.permute(0, 2, 1, 3).reshape(10, 8, 7))  # (N*H, Cv, W)
        ref = rows.reshape(2, 5, 8, 7).permute(0, 2, 1, 3)
    assert out.shape == (2, 8, 5, 7)
    torch.testing.assert_close(out, ref)


def test_input_validation():
    dec = small_decoder()
    feats = make_feats(64, 64)
    with pytest.raises(ValueError, match='4 backbone features'):
        dec(feats[:3])
    bad = list(feats)
    bad[2] = torch.randn(2, 17, 4, 4)
    with pytest.raises(ValueError, match='in_channels'):
        dec(bad)
    with pytest.raises(ValueError, match='4 entries'):
        KMaXPixelDecoder(in_channels=(8, 12, 16))
    with pytest.raises(ValueError, match='block_type'):
        KMaXBlock(8, 4, 'conv')
    with pytest.raises(ValueError, match='divisible'):
        AxialAttention1d(8, 6, 8, num_heads=4)
