"""Hyena N-D (arXiv:2309.13600): the FFT long convolution, causality of the one-quadrant operator,
the implicit filter, the 4-direction mixing, HyenaViT (pure and hybrid) and the FLOP model."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import mmmask.models  # noqa: F401
from mmmask.models.backbones.hyena_nd import (HyenaND, HyenaViT, ImplicitFilter2d,
                                              attention_flops, fft_long_conv2d, hyena_nd_flops,
                                              hyena_vit_uncounted_flops)
from mmmask.models.layers.biased_attention import BiasedSelfAttention
from mmmask.registry import MODELS

TINY = dict(embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64)


def direct_long_conv2d(u, k, bias, scale):
    """Reference: out[i, j] = scale·Σ_{a≤i, b≤j} k[a, b]·u[i−a, j−b] + bias·u, by F.conv2d."""
    c, hh, ww = k.shape
    padded = F.pad(u, (ww - 1, 0, hh - 1, 0))
    out = F.conv2d(padded, k.flip(-1, -2)[:, None], groups=c) * scale
    return out + u * bias[:, None, None]


@pytest.mark.parametrize('hw', [(5, 7), (8, 8), (1, 6)])
def test_fft_long_conv_equals_direct_convolution(hw):
    torch.manual_seed(0)
    u = torch.randn(2, 3, *hw, dtype=torch.float64)
    k = torch.randn(3, *hw, dtype=torch.float64)
    bias = torch.randn(3, dtype=torch.float64)
    out = fft_long_conv2d(u, k, bias, scale=0.25)
    ref = direct_long_conv2d(u, k, bias, 0.25)
    assert out.dtype == u.dtype
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)  # the FFT runs in float32


def test_long_conv_is_one_quadrant_causal():
    torch.manual_seed(0)
    u = torch.randn(1, 2, 6, 5, requires_grad=True)
    k = torch.randn(2, 6, 5)
    out = fft_long_conv2d(u, k, torch.zeros(2))
    i, j = 3, 2
    (grad, ) = torch.autograd.grad(out[0, :, i, j].sum(), u)
    g = grad[0].abs().sum(0)
    assert g[i + 1:].max() < 1e-6 and g[:, j + 1:].max() < 1e-6
    assert g[:i + 1, :j + 1].min() > 1e-6  # and it sees the whole past quadrant


def _gradient_map(mixer, hw, ij, channels=16):
    x = torch.randn(1, hw[0] * hw[1], channels, requires_grad=True)
    out = mixer(x, hw).view(1, *hw, channels)
    (grad, ) = torch.autograd.grad(out[0, ij[0], ij[1]].sum(), x)
    return grad.view(*hw, channels).abs().sum(-1)


def _delta_short_filter(mixer):
    """Make the 3×3 short convolution the identity (so only the long convolution mixes tokens)."""
    with torch.no_grad():
        mixer.short_filter.weight.zero_()
        mixer.short_filter.weight[:, :, 1, 1] = 1.0


@pytest.mark.parametrize('hw', [(6, 6), (5, 8)])
def test_single_direction_operator_is_causal(hw):
    torch.manual_seed(0)
    mixer = HyenaND(16, direction='standard')
    _delta_short_filter(mixer)
    i, j = 2, 3
    g = _gradient_map(mixer, hw, (i, j))
    tol = 1e-9 * g.max()  # FFT round-off: "zero" is ~1e-12·max here, real terms >= 1e-6·max
    assert g[i + 1:].max() < tol and g[:, j + 1:].max() < tol
    assert g[:i + 1, :j + 1].min() > tol
    # with its 3×3 short convolution the operator sees one token further (the halo), no more
    torch.manual_seed(0)
    g = _gradient_map(HyenaND(16, direction='standard'), hw, (i, j))
    tol = 1e-9 * g.max()
    assert g[i + 2:].max() < tol and g[:, j + 2:].max() < tol
    assert g[i + 1, j + 1] > tol


def test_four_directions_break_causality():
    torch.manual_seed(0)
    for direction in ('4dir', '4dirp'):
        mixer = HyenaND(16, direction=direction)
        _delta_short_filter(mixer)
        g = _gradient_map(mixer, (6, 5), (2, 2))
        # every quadrant of the grid now reaches out[2, 2]
        for block in (g[:3, :3], g[3:, :3], g[:3, 3:], g[3:, 3:]):
            assert block.min() > 1e-9 * g.max(), direction  # round-off is ~1e-12·max


def test_four_directions_unflip_correctly():
    """With an identity short conv and equal mixing weights, 4dir commutes with flips."""
    torch.manual_seed(0)
    mixer = HyenaND(8, direction='4dir')
    _delta_short_filter(mixer)
    with torch.no_grad():
        mixer.linear_mix.weight.fill_(0.25)
    x = torch.randn(2, 5, 7, 8)
    for dims in ((1, ), (2, ), (1, 2)):
        torch.testing.assert_close(mixer(x.flip(dims)), mixer(x).flip(dims), rtol=1e-4,
                                   atol=1e-5)


def test_implicit_filter_product_structure_and_decay():
    torch.manual_seed(0)
    filt = ImplicitFilter2d(4, 'product', hidden_dims=16)
    h = filt((6, 9))
    assert h.shape == (4, 6, 9)
    # rank one per channel: h[c, i, j]·h[c, 0, 0] == h[c, i, 0]·h[c, 0, j]
    torch.testing.assert_close(h * h[:, :1, :1], h[:, :, :1] * h[:, :1, :], rtol=1e-4,
                               atol=1e-6)
    # decay rates lie between ln(1e-2)/1.5 and ln(1e-2)/0.3 (fast channels decay to 1e-2 at t=0.3)
    assert math.isclose(filt.x_deltas[0].item(), math.log(1e-2) / 1.5, rel_tol=1e-6)
    assert math.isclose(filt.x_deltas[-1].item(), math.log(1e-2) / 0.3, rel_tol=1e-6)
    joint = ImplicitFilter2d(4, 'joint', hidden_dims=16)((6, 9))
    assert joint.shape == (4, 6, 9)
    # the reference's init: a Linear init applied by a backbone is undone for the filter FFNs
    with torch.no_grad():
        filt.x_mlp[0].weight.zero_()
    filt.init_weights()
    assert filt.x_mlp[0].weight.abs().sum() > 0


def test_reference_fft_normalisation():
    mixer = HyenaND(8)
    assert mixer.long_conv_scale((8, 8)) == pytest.approx(1 / 16)  # fft_size = 2L
    assert HyenaND(8, fft_scale='none').long_conv_scale((8, 8)) == 1.0


@pytest.mark.parametrize('direction', ['standard', '4dir', '4dirp'])
@pytest.mark.parametrize('order', [2, 3])
def test_mixer_shapes_layouts_and_non_square_grids(direction, order):
    torch.manual_seed(0)
    mixer = HyenaND(16, order=order, direction=direction)
    x = torch.randn(2, 3, 5, 16)
    out = mixer(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    torch.testing.assert_close(mixer(x.reshape(2, 15, 16), (3, 5)), out.reshape(2, 15, 16))
    assert mixer(torch.randn(1, 16, 16)).shape == (1, 16, 16)  # square grid inferred


def test_mixer_errors():
    mixer = HyenaND(16)
    with pytest.raises(ValueError, match='not a square'):
        mixer(torch.randn(1, 15, 16))
    with pytest.raises(ValueError, match='CLS'):
        mixer(torch.randn(1, 17, 16), (4, 4))
    with pytest.raises(ValueError, match='direction'):
        HyenaND(16, direction='seq')


def test_hyena_vit_pure_and_hybrid():
    torch.manual_seed(0)
    model = MODELS.build(dict(type='mmmask.HyenaViT', arch=TINY, img_size=32, patch_size=8,
                              num_hyena_layers=2, out_indices=(1, 3), out_type='featmap'))
    kinds = [type(layer.attn) for layer in model.layers]
    assert kinds == [HyenaND, HyenaND, BiasedSelfAttention, BiasedSelfAttention]
    outs = model(torch.randn(2, 3, 40, 56))  # non-square 5×7 grid, not the 4×4 of img_size
    assert [o.shape for o in outs] == [(2, 32, 5, 7)] * 2
    gap = MODELS.build(dict(type='mmmask.HyenaViT', arch=TINY, img_size=32, patch_size=8))
    assert all(isinstance(layer.attn, HyenaND) for layer in gap.layers)
    assert gap(torch.randn(2, 3, 32, 32))[0].shape == (2, 32)
    assert HyenaViT(img_size=32, patch_size=4).embed_dims == 192  # the small-data preset


def test_hybrid_attention_layers_take_vit_weights():
    """The attention layers of a hybrid keep mmpretrain's ViT keys: a ViT checkpoint fills them."""
    from mmpretrain.models import VisionTransformer
    torch.manual_seed(0)
    vit = VisionTransformer(arch=TINY, img_size=32, patch_size=8, with_cls_token=False,
                            out_type='avg_featmap')
    hybrid = HyenaViT(arch=TINY, img_size=32, patch_size=8, num_hyena_layers=2)
    missing, unexpected = hybrid.load_state_dict(vit.state_dict(), strict=False)
    hyena_layers = ('layers.0.attn.', 'layers.1.attn.')
    assert all(k.startswith(hyena_layers) for k in missing + unexpected)
    assert len(missing) > 0 and len(unexpected) == 8  # qkv/proj weight+bias of 2 layers
    # with no Hyena layer the backbone is that ViT, output for output
    plain = HyenaViT(arch=TINY, img_size=32, patch_size=8, num_hyena_layers=0)
    plain.load_state_dict(vit.state_dict())
    plain.eval()
    vit.eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(plain(x)[0], vit(x)[0], rtol=1e-5, atol=1e-5)


def test_hyena_vit_errors():
    with pytest.raises(ValueError, match='arch'):
        HyenaViT(arch='nope')
    with pytest.raises(ValueError, match='CLS'):
        HyenaViT(arch=TINY, out_type='cls_token')
    with pytest.raises(ValueError, match='num_hyena_layers'):
        HyenaViT(arch=TINY, num_hyena_layers=5)


def test_flop_model_matches_counted_matmuls_and_is_subquadratic():
    torch.manual_seed(0)
    for direction in ('standard', '4dir', '4dirp'):
        mixer = HyenaND(16, direction=direction, filter_hidden=8)
        x = torch.randn(1, 6, 10, 16)
        with FlopCounterMode(display=False) as counter:
            mixer(x)
        f = hyena_nd_flops(16, (6, 10), direction=direction, filter_hidden=8)
        counted = f['proj'] + f['short_conv'] + f['filter_mlp'] + f['mix']
        assert counter.get_total_flops() / 2 == counted, direction
    # doubling the grid side multiplies Hyena's cost by ~4·(1 + small log term), attention by ~16
    d = 192
    small, large = hyena_nd_flops(d, (32, 32))['total'], hyena_nd_flops(d, (64, 64))['total']
    assert large / small < 4.5
    assert attention_flops(d, 64 * 64) / attention_flops(d, 32 * 32) > 10


def test_uncounted_flops_of_a_hyena_vit():
    """The FFT + gating MACs the FLOP counter misses, per Hyena layer (in a hybrid: those only)."""
    model = HyenaViT(arch=TINY, img_size=32, patch_size=8, num_hyena_layers=3,
                     hyena_cfg=dict(filter_hidden=8))
    extra = hyena_vit_uncounted_flops(model, (40, 56))
    one = hyena_nd_flops(32, (5, 7), filter_hidden=8)
    assert extra['grid'] == 35
    assert extra['fft'] == pytest.approx(3 * one['long_conv'])
    assert extra['fft_and_gating'] == pytest.approx(3 * (one['long_conv'] + one['gating'] +
                                                         one['filter_outer']))
