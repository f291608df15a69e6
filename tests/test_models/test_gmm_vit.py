"""GMM attention (Li et al., "RetNet viewed through convolution", Pattern Recognition 2024):
providers, GMMViT parity with the official ``ViT`` (fixtures in tests/data/parity/gmm_vit, see the
README there), converter/CLI, parameter overhead and the generic ``WithAttentionBias`` wrapper."""
import copy
import json
import math
import os.path as osp
import sys

import pytest
import torch
from torch import nn

import mmmask.models  # noqa: F401
from mmmask.models.backbones.gmm_vit import (ElementwiseMask, GaussianMixtureMask, GMMViT,
                                             gaussian_distance_prior, gmm_extra_params,
                                             gmm_mask_ops, gmm_param_overhead)
from mmmask.models.backbones.with_attention_bias import BiasedWindowMSA, WithAttentionBias
from mmmask.models.converters import ConversionError
from mmmask.models.converters.gmm_vit import convert_gmm_vit, gmm_vit_arch_of
from mmmask.models.layers import BiasedSelfAttention, MultiplicativeBias
from mmmask.registry import MODELS

# mmpretrain classifiers built here resolve their default data preprocessor in the current scope
pytestmark = pytest.mark.usefixtures('mmpretrain_scope')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DATA = osp.join(REPO, 'tests', 'data', 'parity', 'gmm_vit')
FIXTURES = ['gmm_vit_tiny', 'gmm_vit_inner_dim', 'gmm_vit_single_head', 'elm_vit_tiny',
            'vit_baseline_tiny']


def load_fixture(name):
    return torch.load(osp.join(DATA, f'{name}.pt'), map_location='cpu', weights_only=False)


def classifier_from_fixture(fx):
    """An mmpretrain ImageClassifier (GMMViT + LinearClsHead) holding the converted weights."""
    kwargs = gmm_vit_arch_of(fx['state_dict'], num_heads=fx['meta']['ctor_kwargs']['heads'])
    model = MODELS.build(dict(
        type='mmpretrain.ImageClassifier',
        backbone=dict(type='mmmask.GMMViT', **kwargs),
        head=dict(type='mmpretrain.LinearClsHead', num_classes=fx['meta']['ctor_kwargs'][
            'num_classes'], in_channels=kwargs['arch']['embed_dims'])))
    model.load_state_dict(convert_gmm_vit(fx['state_dict']), strict=True)
    model.eval()
    return model


def attention_maps(backbone, img):
    """Per-layer softmax maps (BiasedSelfAttention.attention), captured during one forward."""
    maps = []
    for layer in backbone.layers:
        attn = layer.attn

        def forward(x, hw=None, attn=attn):
            out, probs = attn.attention(x, hw)
            maps.append(probs)
            return out
        attn.forward = forward
    backbone(img)
    for layer in backbone.layers:
        del layer.attn.forward
    return maps


# ----------------------------------------------------------------------------- parity
@pytest.mark.parametrize('name', FIXTURES)
def test_parity_with_official_vit(name):
    fx = load_fixture(name)
    model = classifier_from_fixture(fx)
    img = fx['inputs']['img']
    with torch.no_grad():
        logits = model(img, mode='tensor')
        maps = attention_maps(model.backbone, img)
    torch.testing.assert_close(logits, fx['outputs']['logits'], atol=1e-5, rtol=1e-5)
    assert len(maps) == len(fx['outputs']['layers'])
    for i, probs in enumerate(maps):
        torch.testing.assert_close(probs, fx['outputs']['layers'][f'layer{i}']['attn'], atol=1e-5,
                                   rtol=1e-5)


@pytest.mark.parametrize('name', [n for n in FIXTURES if not n.startswith('vit_')])
def test_parity_of_the_logit_multiplier(name):
    """The provider's gain is the official mask module applied to ones, and multiplying the
    official scaled logits by it gives the official masked logits."""
    fx = load_fixture(name)
    model = classifier_from_fixture(fx)
    hw = model.backbone.patch_resolution
    for i, layer in enumerate(model.backbone.layers):
        provider = layer.attn.bias_provider
        ref = fx['outputs']['layers'][f'layer{i}']
        with torch.no_grad():
            bias = provider(x=torch.zeros(1, hw[0] * hw[1], 1), hw=hw)
            assert isinstance(bias, MultiplicativeBias)
            gain = torch.broadcast_to(bias.dense(), fx['outputs']['logit_multiplier'][
                f'layer{i}'].shape)
            masked = bias.apply(ref['logits_scaled'])
        torch.testing.assert_close(gain, fx['outputs']['logit_multiplier'][f'layer{i}'],
                                   atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(masked, ref['logits_masked'], atol=1e-4, rtol=1e-5)


def test_fixture_kinds_are_what_they_claim():
    """Guard against testing the wrong path: GMM/ELM fixtures have no CLS token, the baseline has
    one; the single-head fixture has no output projection."""
    for name in FIXTURES:
        model = classifier_from_fixture(load_fixture(name)).backbone
        assert model.mask_type == {'gmm': 'gmm', 'elm': 'elm', 'vit': None}[name.split('_')[0]]
        assert model.with_cls_token == (model.mask_type is None)
    single = classifier_from_fixture(load_fixture('gmm_vit_single_head')).backbone
    assert isinstance(single.layers[0].attn.proj, nn.Identity)


# ----------------------------------------------------------------------------- providers
def test_official_prior_matches_the_official_arithmetic_and_underflows():
    prior = gaussian_distance_prior((4, 4))
    d2 = torch.tensor([[(i % 4 - j % 4)**2 + (i // 4 - j // 4)**2 for j in range(16)]
                       for i in range(16)], dtype=torch.float32)
    torch.testing.assert_close(prior, torch.exp(-d2 / 2), rtol=1e-6, atol=0)
    big = gaussian_distance_prior((16, 16))  # d² up to 450: far entries flush to exactly zero
    assert (big == 0).any() and (big > 0).all(dim=1).logical_not().all()
    log = gaussian_distance_prior((16, 16), mode='log')
    assert torch.isfinite(log).all() and log.min() == -225


def test_gmm_gain_is_a_gaussian_mixture_of_the_distance():
    torch.manual_seed(0)
    for prior in ('official', 'exact'):
        gmm = GaussianMixtureMask(num_heads=2, num_kernels=3, prior=prior)
        assert gmm.sigma.shape == gmm.alpha.shape == (3, 2, 1, 1)
        with torch.no_grad():
            gmm.sigma.copy_(torch.tensor([0.7, 1.5, 3.0]).view(3, 1, 1, 1).expand(3, 2, 1, 1))
            gain = gmm.gain((3, 5))
        idx = torch.arange(15)
        d2 = ((idx[:, None] % 5 - idx[None] % 5)**2 + (idx[:, None] // 5 - idx[None] // 5)**2)
        expected = sum(gmm.alpha[k, :, 0, 0].view(1, 2, 1, 1) *
                       torch.exp(-d2.float() / (2 * (gmm.sigma[k, 0, 0, 0]**2 + 1e-5)))
                       for k in range(3)).detach()
        torch.testing.assert_close(gain, expected, rtol=1e-4, atol=1e-6)


def test_gmm_init_follows_the_official_statistics():
    torch.manual_seed(0)
    gmm = GaussianMixtureMask(num_heads=200, num_kernels=50)
    assert abs(gmm.sigma.mean().item() - 10) < 0.5 and abs(gmm.sigma.std().item() - 10) < 0.5
    assert abs(gmm.alpha.mean().item()) < 0.1 and abs(gmm.alpha.std().item() - 2) < 0.1


def test_gmm_with_one_wide_unit_kernel_is_vanilla_attention():
    """alpha = (1, 0, ...) and a huge sigma: G ≈ 1, so the attention equals plain attention."""
    torch.manual_seed(0)
    gmm = GaussianMixtureMask(num_heads=4, num_kernels=3)
    with torch.no_grad():
        gmm.alpha.zero_()
        gmm.alpha[0] = 1
        gmm.sigma.fill_(1e4)
    biased = BiasedSelfAttention(32, 4, bias_provider=gmm).eval()
    plain = BiasedSelfAttention(32, 4).eval()
    plain.load_state_dict(biased.state_dict(), strict=False)
    x = torch.randn(2, 64, 32)
    torch.testing.assert_close(biased(x), plain(x), atol=1e-5, rtol=1e-5)


def test_gmm_gradients_reach_sigma_and_alpha():
    torch.manual_seed(0)
    attn = BiasedSelfAttention(32, 4, bias_provider=GaussianMixtureMask(4, 3))
    attn(torch.randn(2, 16, 32)).square().sum().backward()
    provider = attn.bias_provider
    assert provider.sigma.grad.abs().sum() > 0 and provider.alpha.grad.abs().sum() > 0


def test_official_prior_has_finite_gradients_on_large_grids():
    """On a 16x16 grid the official prior has exact zeros; σ must still get finite gradients."""
    for prior in ('official', 'exact'):
        gmm = GaussianMixtureMask(num_heads=2, num_kernels=3, prior=prior)
        gmm.gain((16, 16)).sum().backward()
        assert torch.isfinite(gmm.sigma.grad).all() and torch.isfinite(gmm.alpha.grad).all()


def test_gain_leaves_extra_tokens_alone():
    """A CLS token is not on the grid: its rows/columns of the multiplier are ones."""
    gmm = GaussianMixtureMask(num_heads=2, num_kernels=2)
    gain = gmm(x=torch.zeros(1, 17, 8), hw=(4, 4)).dense()
    assert gain.shape == (1, 2, 17, 17)
    assert (gain[..., 0, :] == 1).all() and (gain[..., :, 0] == 1).all()
    torch.testing.assert_close(gain[..., 1:, 1:], gmm.gain((4, 4)))


def test_elm_starts_uniform_and_is_tied_to_its_grid():
    elm = ElementwiseMask(16)
    assert elm.grid == (4, 4) and elm.mask.shape == (16, 16) and (elm.mask == 0).all()
    attn = BiasedSelfAttention(16, 2, bias_provider=elm)
    _, probs = attn.attention(torch.randn(2, 16, 16))
    torch.testing.assert_close(probs, torch.full_like(probs, 1 / 16))
    with pytest.raises(ValueError, match='tied to one grid'):
        elm(x=torch.zeros(1, 25, 16), hw=(5, 5))
    with pytest.raises(ValueError, match='not a square'):
        ElementwiseMask(15)


def test_providers_are_registered_in_the_mmmask_scope():
    gmm = MODELS.build(dict(type='mmmask.GaussianMixtureMask', num_heads=3, num_kernels=5))
    elm = MODELS.build(dict(type='mmmask.ElementwiseMask', grid=(2, 3)))
    assert isinstance(gmm, GaussianMixtureMask) and isinstance(elm, ElementwiseMask)
    with pytest.raises(ValueError, match='prior'):
        GaussianMixtureMask(2, prior='additive')


# ----------------------------------------------------------------------------- GMMViT
def test_gmmvit_presets_and_errors():
    with pytest.raises(KeyError, match='vit-base'):
        GMMViT(arch='huge')
    model = GMMViT(arch='vit', img_size=32, patch_size=4)
    assert (model.embed_dims, model.num_layers, model.num_heads, model.head_dims) == (192, 9, 12,
                                                                                      16)
    assert not model.with_cls_token and model.out_type == 'avg_featmap'
    with pytest.raises(ValueError, match='img_size'):
        model(torch.randn(1, 3, 48, 48))
    with pytest.raises(ValueError, match='mask_type'):
        GMMViT(arch='vit', mask_type='additive')
    with pytest.raises(ValueError, match='cls_token'):
        GMMViT(arch='vit', out_type='cls_token')


def test_gmmvit_outputs():
    torch.manual_seed(0)
    arch = dict(embed_dims=24, num_layers=3, num_heads=3, head_dims=8, mlp_ratio=2)
    img = torch.randn(2, 3, 16, 16)
    fm = GMMViT(arch, img_size=16, out_type='featmap', out_indices=(0, -1)).eval()
    outs = fm(img)
    assert [o.shape for o in outs] == [(2, 24, 4, 4)] * 2
    raw = GMMViT(arch, img_size=16, mask_type=None, out_type='raw').eval()
    assert raw(img)[0].shape == (2, 17, 24)
    # other input sizes only with interpolation
    interp = GMMViT(arch, img_size=16, mask_type='gmm', interpolate_pos_embed=True).eval()
    assert interp(torch.randn(1, 3, 24, 24))[0].shape == (1, 24)
    # pooled output of the last layer is LN(mean of tokens), as the official head
    with torch.no_grad():
        tokens = fm(img)[1].flatten(2).mean(-1)
        fm.out_type = 'avg_featmap'
        pooled = fm(img)
    torch.testing.assert_close(pooled[1], fm.norm(tokens))
    assert pooled[0].shape == (2, 24)  # intermediate layers: plain mean


def test_gmmvit_uses_one_drop_path_for_every_layer():
    model = GMMViT(dict(embed_dims=16, num_layers=3, num_heads=2, head_dims=8), img_size=16,
                   drop_path_rate=0.1)
    assert len({id(layer.drop_path) for layer in model.layers}) == 1
    assert model.layers[0].drop_path.drop_prob == 0.1


def test_parameter_overhead_of_the_official_cifar_vit():
    """Notes §1: +1080 GMM parameters, −384 for the CLS token and its position row."""
    def count(m):
        return sum(p.numel() for p in m.parameters() if p.requires_grad)
    gmm, plain = GMMViT('vit', mask_type='gmm'), GMMViT('vit', mask_type=None)
    elm = GMMViT('vit', mask_type='elm')
    head = 192 * 10 + 10
    assert count(plain) + head == 2_692_426 and count(gmm) + head == 2_693_122
    overhead = gmm_param_overhead(192, 9, 12, 5)
    assert overhead == dict(mask=1080, cls_and_pos=-384, net=696)
    assert count(gmm) - count(plain) == overhead['net']
    assert count(elm) - count(plain) == gmm_param_overhead(192, 9, 12, mask_type='elm')['net']
    assert gmm_extra_params(2, [3, 6], 5) == 2 * 5 * 9
    # the official state dict of this config (keys file) holds the same trainable parameters
    keys = json.load(open(osp.join(DATA, 'keys_gmm_vit_cifar10.json')))
    assert keys['num_parameters_unique'] == count(gmm) + head + 64 * 64  # + the frozen prior


def test_gmm_mask_ops_count_the_elementwise_work():
    ops = gmm_mask_ops(9, 12, 64, 5, batch_size=2)
    assert ops == dict(gain_pow=9 * 5 * 12 * 4096, gain_mac=9 * 5 * 12 * 4096,
                       apply=2 * 9 * 12 * 4096)
    # the gain really has K·heads·N² entries before the sum over kernels
    gmm = GaussianMixtureMask(num_heads=12, num_kernels=5)
    assert (gmm.alpha * gaussian_distance_prior((8, 8))**gmm.sigma).numel() == ops['gain_pow'] // 9
    assert gmm_mask_ops(2, [3, 6], 16)['apply'] == (3 + 6) * 256


@pytest.mark.parametrize('kind', ['gmm', 'elm', 'vit'])
def test_full_cifar_config_converts(kind):
    """The keys/shapes of the official 2.7M CIFAR models convert into mmpretrain classifiers."""
    fname = 'keys_vit_cifar10.json' if kind == 'vit' else f'keys_{kind}_vit_cifar10.json'
    keys = json.load(open(osp.join(DATA, fname)))['keys']
    state = {}
    for k, info in keys.items():
        shape = info['shape']
        t = torch.zeros(shape)
        if k == 'mask' or (k.endswith('fn.mask.mask') and len(shape) == 4):
            t = gaussian_distance_prior((8, 8)).view(shape)
        state[k] = t
    kwargs = gmm_vit_arch_of(state, num_heads=12)
    assert kwargs['arch'] == dict(embed_dims=192, num_layers=9, num_heads=12, head_dims=16,
                                  mlp_ratio=2)
    assert kwargs['mask_type'] == {'gmm': 'gmm', 'elm': 'elm', 'vit': None}[kind]
    model = MODELS.build(dict(type='mmpretrain.ImageClassifier',
                              backbone=dict(type='mmmask.GMMViT', **kwargs),
                              head=dict(type='mmpretrain.LinearClsHead', num_classes=10,
                                        in_channels=192)))
    model.load_state_dict(convert_gmm_vit(state), strict=True)


def test_converter_rejects_foreign_checkpoints():
    fx = load_fixture('gmm_vit_tiny')
    with pytest.raises(ConversionError, match='not official GMM-ViT keys'):
        convert_gmm_vit(dict(fx['state_dict'], **{'blocks.0.attn.qkv.weight': torch.zeros(1)}))
    bad = dict(fx['state_dict'], mask=torch.ones_like(fx['state_dict']['mask']))
    with pytest.raises(ConversionError, match='distance prior'):
        convert_gmm_vit(bad)
    backbone_only = convert_gmm_vit(fx['state_dict'], with_head=False)
    assert all(k.startswith('backbone.') for k in backbone_only)
    with pytest.raises(ConversionError, match='num_heads'):
        gmm_vit_arch_of(load_fixture('elm_vit_tiny')['state_dict'])


def run_cli(monkeypatch, *args):
    """tools/model_converters/gmm_vit2mmmask.py main(), in-process."""
    import importlib.util
    path = osp.join(REPO, 'tools', 'model_converters', 'gmm_vit2mmmask.py')
    spec = importlib.util.spec_from_file_location('gmm_vit2mmmask', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, 'argv', ['gmm_vit2mmmask.py', *map(str, args)])
    return module.main()


def test_converter_cli(tmp_path, monkeypatch, capsys):
    fx = load_fixture('gmm_vit_tiny')
    src, dst = tmp_path / 'checkpoint.pth', tmp_path / 'out.pth'
    torch.save({'model_state_dict': fx['state_dict'], 'epoch': 3}, str(src))
    assert run_cli(monkeypatch, src, dst) == 0
    out = torch.load(str(dst), weights_only=False)
    assert out['meta']['gmm_vit']['arch']['num_heads'] == 3
    torch.testing.assert_close(out['state_dict'], convert_gmm_vit(fx['state_dict']))
    # the paper's CIFAR ELM model (heads from --num-heads), checked against its config
    keys = json.load(open(osp.join(DATA, 'keys_elm_vit_cifar10.json')))['keys']
    torch.save({'model_state_dict': {
        k: gaussian_distance_prior((8, 8)).view(v['shape']) if k == 'mask' else
        torch.zeros(v['shape']) for k, v in keys.items()}}, str(src))
    config = osp.join(REPO, 'configs', 'gmm_vit', 'elm-vit_1xb128-100e_cifar10.py')
    assert run_cli(monkeypatch, src, dst, '--num-heads', 12, '--config', config) == 0
    assert run_cli(monkeypatch, src, dst, '--num-heads', 12, '--config', config.replace(
        'elm-vit', 'gmm-vit')) == 2  # the GMM model has sigma/alpha the ELM checkpoint lacks
    torch.save({'model_state_dict': {'foo': torch.zeros(1)}}, str(src))
    assert run_cli(monkeypatch, src, dst) == 2
    assert 'gmm_vit2mmmask' in capsys.readouterr().err


# ----------------------------------------------------------------------------- wrapper
VIT = dict(type='mmpretrain.VisionTransformer',
           arch=dict(embed_dims=32, num_layers=2, num_heads=4, feedforward_channels=64),
           img_size=32, patch_size=4)
SWIN = dict(type='mmpretrain.SwinTransformer',
            arch=dict(embed_dims=24, depths=[2, 2], num_heads=[3, 6]), img_size=32,
            patch_size=2, window_size=4, out_indices=(0, 1))
GMM = dict(type='mmmask.GaussianMixtureMask', num_kernels=3)


def wide_unit_kernel_(model):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('bias_provider.alpha'):
                p.zero_()
                p[0] = 1
            elif name.endswith('bias_provider.sigma'):
                p.fill_(1e4)


@pytest.mark.parametrize('upstream', [VIT, SWIN, dict(VIT, with_cls_token=False,
                                                      out_type='avg_featmap')],
                         ids=['vit', 'swin', 'vit-gap'])
@pytest.mark.parametrize('prior', ['official', 'exact'])
def test_wrapper_keeps_upstream_keys_and_reduces_to_it(upstream, prior):
    torch.manual_seed(0)
    plain = MODELS.build(copy.deepcopy(upstream))
    plain.init_weights()
    plain.eval()
    wrapped = MODELS.build(dict(type='mmmask.WithAttentionBias', backbone=upstream,
                                bias_provider=dict(GMM, prior=prior)))
    wrapped.eval()
    assert type(wrapped) is type(plain)
    upstream_sd = plain.state_dict()
    missing, unexpected = wrapped.load_state_dict(upstream_sd, strict=False)
    assert not unexpected and missing and all('.bias_provider.' in k for k in missing)
    # every upstream key is still there, and the wrapped model minus its providers loads strictly
    # back into the upstream backbone
    own = {k: v for k, v in wrapped.state_dict().items() if '.bias_provider.' not in k}
    assert set(own) == set(upstream_sd)
    plain.load_state_dict(own, strict=True)
    num = wrapped.attention_bias['swapped']
    heads = [3, 3, 6, 6] if upstream is SWIN else [4, 4]
    assert num == len(heads)
    assert sum(p.numel() for n, p in wrapped.named_parameters() if 'bias_provider' in n) == \
        gmm_extra_params(num, heads, 3)
    wide_unit_kernel_(wrapped)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(plain(x), wrapped(x)):
            torch.testing.assert_close(b, a, atol=2e-5, rtol=1e-5)
        # and the bias does change something when it is not ≈ 1
        for name, p in wrapped.named_parameters():
            if name.endswith('bias_provider.sigma'):
                p.fill_(1.)
        assert not torch.allclose(plain(x)[0], wrapped(x)[0], atol=1e-3)


def test_window_attention_applies_the_mask_before_the_relative_position_bias():
    """Reference: the official GMM Swin order, ``softmax((s·q kᵀ) ⊙ G + B_rel + shift_mask) v``."""
    torch.manual_seed(0)
    gmm = GaussianMixtureMask(num_heads=2, num_kernels=3)
    attn = BiasedWindowMSA(16, (4, 4), 2, bias_provider=gmm).eval()
    nn.init.normal_(attn.relative_position_bias_table, std=1.0)
    x = torch.randn(6, 16, 16)  # 2 images x 3 windows
    shift_mask = torch.zeros(3, 16, 16)
    shift_mask[1, :8, 8:] = -100.
    q, k, v = attn.qkv(x).view(6, 16, 3, 2, 8).permute(2, 0, 3, 1, 4)
    rel = attn.relative_position_bias_table[attn.relative_position_index.view(-1)].view(
        16, 16, 2).permute(2, 0, 1)
    logits = (q * 8**-0.5) @ k.transpose(-1, -2) * gmm.gain((4, 4)) + rel
    logits = (logits.view(2, 3, 2, 16, 16) + shift_mask[None, :, None]).view(6, 2, 16, 16)
    expected = attn.proj((logits.softmax(-1) @ v).transpose(1, 2).reshape(6, 16, 16))
    with torch.no_grad():
        torch.testing.assert_close(attn(x, mask=shift_mask), expected.detach(), atol=1e-5,
                                   rtol=1e-5)


def test_wrapper_fills_provider_arguments_per_layer():
    """Heads differ per Swin stage; the ELM mask gets the window grid; layer_indices limits it."""
    swin = WithAttentionBias(SWIN, dict(type='mmmask.ElementwiseMask'))
    masks = [m.bias_provider for m in swin.modules() if isinstance(m, BiasedWindowMSA)]
    assert [m.grid for m in masks] == [(4, 4)] * 4
    gmm = WithAttentionBias(SWIN, GMM, layer_indices=[1, 3])
    providers = [m.bias_provider for m in gmm.modules() if isinstance(m, BiasedWindowMSA)]
    assert providers[0] is None and providers[2] is None
    assert providers[1].alpha.shape == (3, 3, 1, 1) and providers[3].alpha.shape == (3, 6, 1, 1)
    vit = WithAttentionBias(dict(VIT, with_cls_token=False, out_type='avg_featmap'),
                            dict(type='mmmask.ElementwiseMask'))
    assert vit.layers[0].attn.bias_provider.grid == (8, 8)
    out = vit(torch.randn(1, 3, 32, 32))
    assert out[0].shape == (1, 32)


def test_wrapper_passes_backbone_arguments_and_rejects_backbones_without_attention():
    swin = WithAttentionBias(SWIN, GMM, out_indices=(1, ))
    swin.eval()
    assert [o.shape for o in swin(torch.randn(1, 3, 32, 32))] == [(1, 48, 8, 8)]
    with pytest.raises(TypeError, match='no mmpretrain MultiheadAttention or WindowMSA'):
        WithAttentionBias(dict(type='mmpretrain.ResNet', depth=18), GMM)
    with pytest.raises(KeyError, match='not registered'):
        WithAttentionBias(SWIN, dict(type='NoSuchProvider'))


def test_wrapper_gradients_reach_the_providers():
    torch.manual_seed(0)
    swin = WithAttentionBias(SWIN, GMM)
    swin.train()
    sum(o.square().mean() for o in swin(torch.randn(2, 3, 32, 32))).backward()
    grads = [p.grad for n, p in swin.named_parameters() if 'bias_provider' in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
    assert math.isfinite(sum(g.sum().item() for g in grads))


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize('name', ['gmm-vit_1xb128-100e_cifar10', 'gmm-vit_1xb128-100e_cifar100',
                                  'gmm-swin_1xb128-100e_cifar10'])
def test_paper_config_pipelines_run(name):
    """The official augmentation (CIFAR AutoAugment, erasing) as mmpretrain transforms, inside the
    RepeatDataset wrapper that tests/test_configs.py does not look into."""
    import numpy as np
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'gmm_vit', f'{name}.py'))
    init_default_scope('mmpretrain')
    ds = cfg.train_dataloader.dataset
    assert ds.type == 'RepeatDataset' and ds.times == 3
    assert len(cfg.cifar10_policies) == 25 and cfg.train_dataloader.batch_size == 128
    pipeline = Compose(ds.dataset.pipeline)
    rng = np.random.default_rng(0)
    for _ in range(20):
        out = pipeline(dict(img=rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), gt_label=1))
        assert tuple(out['inputs'].shape) == (3, 32, 32)
