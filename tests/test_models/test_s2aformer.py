"""S2AFormer: strip self-attention shapes and numerics, multi-scale outputs, FLOPs, configs."""
import pytest
import torch

from mmmask.models.backbones.lookupvit import count_forward_flops
from mmmask.models.backbones.s2aformer import (HybridPerceptionBlock, S2AFormer,
                                               StripSelfAttention, ssa_flops)
from mmmask.registry import MODELS

# mmpretrain classifiers built here resolve their default data preprocessor in the current scope
pytestmark = pytest.mark.usefixtures('mmpretrain_scope')

TOY = dict(embed_dims=[16, 32, 48, 64], depths=[1, 1, 2, 1], num_heads=[1, 2, 2, 4],
           qk_dims=[4, 8, 8, 16], sr_ratios=[4, 2, 2, 1], mlp_ratios=[2, 2, 2, 2])


@pytest.mark.parametrize('hw,r', [((16, 24), 4), ((14, 14), 2), ((7, 9), 4), ((5, 5), 1)])
def test_ssa_affinity_is_n_by_n_over_r2_with_dqk_channels(hw, r):
    torch.manual_seed(0)
    attn = StripSelfAttention(64, num_heads=4, qk_dims=8, sr_ratio=r).eval()
    x = torch.randn(2, *hw, 64)
    n = hw[0] * hw[1]
    nr = -(-hw[0] // r) * -(-hw[1] // r)
    q, k, v = attn.qkv(x)
    assert q.shape == (2, 4, n, 2)  # d_qk = 8 channels over 4 heads: thin "strips"
    assert k.shape == (2, 4, nr, 2)
    assert v.shape == (2, 4, nr, 16)  # V keeps all C = 64 channels
    a = attn.affinity(x)
    assert a.shape == (2, 4, n, nr)
    torch.testing.assert_close(a.sum(-1), torch.ones(2, 4, n))
    assert attn(x).shape == x.shape


def test_ssa_matches_reference_formula():
    torch.manual_seed(0)
    attn = StripSelfAttention(32, num_heads=2, qk_dims=8, sr_ratio=2).eval()
    for p in attn.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(1, 6, 6, 32)
    # reference: depth-wise 2x2/2 conv, LN, then per-head softmax(Q K^T / sqrt(4)) V
    xr = torch.nn.functional.conv2d(x.permute(0, 3, 1, 2), attn.sr.weight, attn.sr.bias,
                                    stride=2, groups=32).flatten(2).transpose(1, 2)
    xr = torch.nn.functional.layer_norm(xr, (32, ), attn.sr_norm.weight, attn.sr_norm.bias)
    q = x.reshape(1, 36, 32) @ attn.q.weight.T + attn.q.bias
    k = xr @ attn.k.weight.T + attn.k.bias
    v = xr @ attn.v.weight.T + attn.v.bias
    outs = []
    for h in range(2):
        a = torch.softmax(q[..., 4 * h:4 * h + 4] @ k[..., 4 * h:4 * h + 4].mT / 2.0, -1)
        outs.append(a @ v[..., 16 * h:16 * h + 16])
    ref = torch.cat(outs, -1) @ attn.proj.weight.T + attn.proj.bias
    torch.testing.assert_close(attn(x).reshape(1, 36, 32), ref, rtol=0, atol=1e-5)


def test_ssa_flops_formula_matches_flop_counter():
    attn = StripSelfAttention(32, num_heads=2, qk_dims=8, sr_ratio=4).eval()
    for hw in [(16, 16), (7, 10)]:
        assert count_forward_flops(attn, torch.randn(1, *hw, 32)) == ssa_flops(32, hw, 8, 4)
    # the strip attention is much cheaper than full attention at stage-1 resolution (56x56)
    assert ssa_flops(64, (56, 56), 16, 8) < 0.05 * ssa_flops(64, (56, 56), 64, 1)


def test_multi_scale_outputs():
    model = S2AFormer(arch=TOY, out_indices=(0, 1, 2, 3))
    model.init_weights()
    model.eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape[1:]) for o in outs] == [(16, 16, 24), (32, 8, 12), (48, 4, 6),
                                                 (64, 2, 3)]
    with torch.no_grad():  # odd sizes: ceil-mode strides, reduction on the padded map
        outs = model(torch.randn(1, 3, 50, 70))
    assert [tuple(o.shape[2:]) for o in outs] == [(13, 18), (7, 9), (4, 5), (2, 3)]


def test_hpb_is_residual_everywhere():
    torch.manual_seed(0)
    block = HybridPerceptionBlock(16, 2, 4, 2, 2.)
    for m in (block.cpe.conv, block.attn.proj, block.lim.pw2, block.mlp[3]):
        torch.nn.init.zeros_(m.weight)
        torch.nn.init.zeros_(m.bias)
    x = torch.randn(1, 5, 6, 16)
    torch.testing.assert_close(block(x), x)


def test_presets_and_errors():
    for name in S2AFormer.arch_zoo:
        arch = S2AFormer.arch_zoo[name]
        assert len(arch['embed_dims']) == 4
    with pytest.raises(ValueError, match='valid'):
        S2AFormer(arch='xxl')
    with pytest.raises(ValueError, match='misses'):
        S2AFormer(arch=dict(embed_dims=[8] * 4))
    with pytest.raises(ValueError, match='entries'):
        S2AFormer(arch=dict(TOY, depths=[1, 1, 1]))
    with pytest.raises(ValueError, match='divisible'):
        StripSelfAttention(32, 3, 8)
    with pytest.raises(ValueError, match='out of range'):
        S2AFormer(arch=TOY, out_indices=(4, ))


def test_frozen_stages_and_norm_eval():
    model = S2AFormer(arch=TOY, frozen_stages=1, norm_eval=True)
    model.train()
    assert not any(p.requires_grad for p in model.stem.parameters())
    assert not any(p.requires_grad for p in model.stages[0].parameters())
    assert all(p.requires_grad for p in model.stages[1].parameters())
    assert not model.stem[1].training


def test_image_classifier():
    from mmpretrain.structures import DataSample
    model = MODELS.build(dict(
        type='mmpretrain.ImageClassifier',
        backbone=dict(type='mmmask.S2AFormer', arch=TOY, out_indices=(3, )),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(type='mmpretrain.LinearClsHead', num_classes=10, in_channels=64)))
    model.init_weights()
    data = [DataSample().set_gt_label(i) for i in range(2)]
    losses = model(torch.randn(2, 3, 32, 32), data, mode='loss')
    assert torch.isfinite(losses['loss'])
