"""DVT (Denoising Vision Transformers, ECCV 2024): stage-2 denoiser parity with the official
Jiawei-Yang/Denoising-ViT ``Denoiser`` (fixtures in tests/data/parity/dvt/, see README there), the
converter, the pure-PyTorch neural field, and the ``DenoisedViT`` backbone."""
import json
import os.path as osp

import pytest
import torch

from mmmask.models.backbones.denoised_vit import DenoisedViT
from mmmask.models.converters.common import ConversionError
from mmmask.models.converters.dvt import convert_dvt_denoiser
from mmmask.models.layers.dvt import (DVTDenoiser, HashGridEncoding, NeuralFeatureField,
                                      SingleImageDenoiser, artifact_statistic, dvt_lr_at,
                                      make_patch_coordinates, random_resized_crop_flip,
                                      resample_abs_pos_embed_timm)

DATA = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'data', 'parity', 'dvt')
TOL = dict(atol=1e-5, rtol=1e-5)
FIXTURES = ['dvt_denoiser_same_grid.pt', 'dvt_denoiser_resampled_pe.pt',
            'dvt_denoiser_upsampled_pe_chfirst.pt', 'dvt_denoiser_2blocks_nope.pt']


def _load(name):
    return torch.load(osp.join(DATA, name), map_location='cpu', weights_only=False)


def _build(kw) -> DVTDenoiser:
    return DVTDenoiser((kw['noise_map_height'], kw['noise_map_width']), kw['feat_dim'],
                       num_blocks=kw.get('num_blocks', 1), enable_pe=kw.get('enable_pe', True))


@pytest.mark.parametrize('name', FIXTURES)
def test_denoiser_parity(name):
    fx = _load(name)
    den = _build(fx['meta']['ctor_kwargs']).eval()
    den.load_state_dict(convert_dvt_denoiser(fx['state_dict']), strict=True)
    x = fx['inputs']['x']
    with torch.no_grad():
        out = den(x.clone(), **fx['meta']['forward_kwargs'])
    ref = fx['outputs']['forward']
    if isinstance(ref, dict):
        assert set(out) == set(ref) and out['class_tokens'] is None
        torch.testing.assert_close(out['denoised_feats'], ref['denoised_feats'], **TOL)
        torch.testing.assert_close(out['original_feats'], ref['original_feats'], **TOL)
    else:
        assert out.shape == ref.shape
        torch.testing.assert_close(out, ref, **TOL)
    b, h, w, c = x.shape
    pe = den.resampled_pos_embed((h, w))
    if 'pos_embed_resampled' in fx['outputs']:
        torch.testing.assert_close(pe, fx['outputs']['pos_embed_resampled'], **TOL)
    tokens = x.reshape(b, h * w, c) + (pe if pe is not None else 0)
    torch.testing.assert_close(tokens, fx['outputs']['block_input_tokens'], **TOL)
    # the [B, C, h, w] entry point is the same computation
    with torch.no_grad():
        chw = den.forward_featmap(x.permute(0, 3, 1, 2))
    ref_t = ref['denoised_feats'] if isinstance(ref, dict) else ref
    if ref_t.shape[-1] == c:
        ref_t = ref_t.permute(0, 3, 1, 2)
    torch.testing.assert_close(chw, ref_t, **TOL)


@pytest.mark.parametrize('name', ['keys_dvt_denoiser_dinov2_base_518.json',
                                  'keys_dvt_denoiser_vit_small_patch16_224.json'])
def test_official_keys_map(name):
    """Released settings (DINOv2-B/14 at 518, ViT-S/16 at 224): same parameters after the map."""
    with open(osp.join(DATA, name)) as f:
        spec = json.load(f)
    kw = spec['meta']['ctor_kwargs']
    den = _build(kw)
    fake = {k: torch.zeros(v['shape']) if isinstance(v, dict) else torch.zeros(v)
            for k, v in spec['keys'].items()}
    mapped = convert_dvt_denoiser({'denoiser': fake, 'optimizer': {}})
    assert {k: tuple(v.shape) for k, v in mapped.items()} == \
        {k: tuple(v.shape) for k, v in den.state_dict().items()}
    assert sum(p.numel() for p in den.parameters()) == spec['num_parameters_unique']


def test_converter_prefix_and_errors():
    fx = _load('dvt_denoiser_2blocks_nope.pt')
    sd = {'module.' + k: v for k, v in fx['state_dict'].items()}
    sd['module.vit.model.cls_token'] = torch.zeros(1)
    out = convert_dvt_denoiser(sd, prefix='backbone.denoiser.')
    assert 'backbone.denoiser.blocks.1.ffn.layers.0.0.weight' in out
    assert not any('vit' in k for k in out)
    with pytest.raises(ConversionError, match='head.weight'):
        convert_dvt_denoiser({'head.weight': torch.zeros(1)})


def test_resample_quirks():
    pe = torch.randn(1, 36, 8)
    assert resample_abs_pos_embed_timm(pe, (6, 6)) is pe  # same square grid: unchanged
    assert resample_abs_pos_embed_timm(pe, (4, 9)).shape == (1, 36, 8)  # same count, resized
    assert not torch.allclose(resample_abs_pos_embed_timm(pe, (4, 9)), pe)
    with pytest.raises(ValueError, match="pe_resample='exact'"):
        resample_abs_pos_embed_timm(torch.randn(1, 20, 8), (4, 5))  # non-square stored grid
    den = DVTDenoiser((4, 5), 64, pe_resample='exact')
    assert den.resampled_pos_embed((4, 5)) is den.pos_embed
    assert den.resampled_pos_embed((8, 10)).shape == (1, 80, 64)
    with pytest.raises(ValueError, match='feat_dim >= 64'):
        DVTDenoiser(4, 32)
    with pytest.raises(ValueError, match='channels-last'):
        DVTDenoiser(4, 64)(torch.randn(1, 64, 4, 4))


def test_hash_grid_encoding():
    enc = HashGridEncoding(n_levels=4, n_features_per_level=2, log2_hashmap_size=6,
                           base_resolution=4, max_resolution=32)
    assert enc.resolutions[0] == 4 and not enc.hashed[0] and enc.hashed[-1]
    assert enc.table.shape[0] == sum(enc.sizes) and max(enc.sizes) == 64
    torch.manual_seed(0)
    with torch.no_grad():
        enc.table.uniform_(-1, 1)
    xy = torch.rand(50, 2) * 0.99
    out = enc(xy)
    assert out.shape == (50, 8)
    # bilinear interpolation: continuous (|dx| * scale * 2 * max|table| bounds the change)
    eps = torch.tensor([[1e-5, 0.]])
    assert (enc(xy + eps) - out).abs().max() < 1e-5 * enc.scales[-1] * 2 + 1e-6
    # at a vertex of the dense first level the output is that table entry
    vertex = torch.tensor([[(1 - 0.5) / enc.scales[0], (2 - 0.5) / enc.scales[0]]])
    torch.testing.assert_close(enc(vertex)[0, :2], enc.table[1 + 2 * enc.resolutions[0]])
    out.sum().backward()
    assert enc.table.grad.abs().sum() > 0
    field = NeuralFeatureField(16, n_levels=2, n_features_per_level=2, log2_hashmap_size=8,
                               base_resolution=4, max_resolution=8)
    assert field(torch.rand(3, 5, 2)).shape == (3, 5, 16)
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        field(torch.full((1, 2), 1.5))
    fourier = NeuralFeatureField(16, encoding='fourier', n_frequencies=3, mlp_layers=2)
    assert fourier(torch.rand(7, 2)).shape == (7, 16)


def test_single_image_denoiser_losses():
    torch.manual_seed(0)
    model = SingleImageDenoiser((3, 4), 64)
    field = NeuralFeatureField(64, encoding='fourier', n_frequencies=2)
    raw, xy = torch.randn(3, 4, 64), make_patch_coordinates(3, 4, 0, 1)
    out = model(raw, xy, field, return_visualization=True)
    assert set(out) >= {'loss', 'patch_l2_loss', 'cosine_similarity_loss', 'denoised_feats',
                        'shared_patterns', 'denoised_features'}
    # grid_sample at the patch grid (align_corners=True) is an exact look-up of s
    tok = model(raw.reshape(-1, 64), xy.reshape(-1, 2), field,
                make_patch_coordinates(3, 4).reshape(-1, 2))
    torch.testing.assert_close(tok['loss'], out['loss'])
    model.start_residual_predictor()
    out2 = model(raw, xy, field, return_visualization=True)
    assert 'residual_loss' in out2 and 'pred_residual' in out2
    torch.testing.assert_close(out2['loss'], out2['patch_l2_loss'] + out2['cosine_similarity_loss']
                               + out2['residual_loss'] + out2['residual_sparsity_loss'])


def test_views_and_schedule():
    img = torch.rand(3, 32, 32)
    views, coords = random_resized_crop_flip(img, 6, (32, 32), patch_size=8, stride=8, seed=3)
    assert views.shape == (6, 3, 32, 32) and coords.shape == (6, 4, 4, 2)
    assert coords.min() >= 0 and coords.max() <= 1
    spans = coords[..., 0].amax((1, 2)) - coords[..., 0].amin((1, 2))
    assert (spans < 1).all()  # crops cover part of the image (scale 0.1-0.5)
    v2, c2 = random_resized_crop_flip(img, 6, (32, 32), patch_size=8, stride=8, seed=3)
    assert torch.equal(views, v2) and torch.equal(coords, c2)
    assert dvt_lr_at(0, 0.01, 0.001, 100, 10) == 0
    assert abs(dvt_lr_at(10, 0.01, 0.001, 100, 10) - 0.01) < 1e-12
    assert abs(dvt_lr_at(100, 0.01, 0.001, 100, 10) - 0.001) < 1e-12


def test_artifact_statistic():
    same = torch.randn(1, 3, 3, 8).expand(5, 3, 3, 8)
    assert abs(artifact_statistic(same) - 1) < 1e-9
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(400, 3, 3, 8, generator=g)
    assert artifact_statistic(noise) < 0.05


def test_denoised_vit_backbone_and_converted_checkpoint(tmp_path):
    fx = _load('dvt_denoiser_upsampled_pe_chfirst.pt')
    model = DenoisedViT(
        vit=dict(type='mmpretrain.VisionTransformer',
                 arch=dict(embed_dims=64, num_layers=2, num_heads=1, feedforward_channels=64),
                 img_size=40, patch_size=8),
        out_indices=(0, 1))
    assert model.denoiser.noise_map_size == (5, 5)
    model.denoiser.load_state_dict(convert_dvt_denoiser(fx['state_dict']))
    model.train()
    assert not model.vit.training and model.denoiser.training
    assert all(not p.requires_grad for p in model.vit.parameters())
    model.eval()
    x = torch.randn(1, 3, 72, 56)
    with torch.no_grad():
        outs = model(x)
        raw, den = model.forward_raw_and_denoised(x)
        vit_outs = model.vit(x)
    assert outs[0].shape == outs[1].shape == (1, 64, 9, 7)
    torch.testing.assert_close(outs[0], vit_outs[0])  # earlier layers pass through raw
    torch.testing.assert_close(raw, vit_outs[1])
    torch.testing.assert_close(outs[1], den)
    torch.testing.assert_close(den, model.denoiser(raw.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))
    assert not torch.allclose(den, raw, atol=1e-3)
