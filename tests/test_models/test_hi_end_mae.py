"""Hi-End-MAE: parity of the decoder/loss with the official 3-D model (fixtures in
tests/data/parity/hi_end_mae/README.md), 2-D shapes/properties, the toy config, bad inputs.

The official model is 3-D. The library's decoder and loss work on token sequences, so the test
embeds the fixture volumes itself (channel-last patchify + the fixture's Conv3d kernel + the 3-D
sin-cos of the state dict) and runs the official weights through mmmask's encoder blocks,
``HiEndMAEDecoder`` and ``hi_end_mae_loss``.
"""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

from mmmask.models.converters import ConversionError, convert_hi_end_mae
from mmmask.models.selfsup.hi_end_mae import HiEndMAE, encode_visible_tokens
from mmmask.registry import MODELS
from mmmask.utils import register_all_modules

register_all_modules()

FIX = osp.join(osp.dirname(__file__), '..', 'data', 'parity', 'hi_end_mae')
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY = osp.join(REPO, 'configs', 'hi_end_mae', 'hi-end-mae_vit-tiny-p8_1xb64-30e_toy-pretrain.py')
ATOL = dict(atol=1e-5, rtol=1e-5)


def load(name):
    return torch.load(osp.join(FIX, name), weights_only=True)


def patchify3d(vol, p):
    """Official ``patchify_image``: ``[B,C,H,W,D]`` → ``[B, gh·gw·gd, ph·pw·pd·C]``."""
    B, C, H, W, D = vol.shape
    x = vol.reshape(B, C, H // p, p, W // p, p, D // p, p).permute(0, 2, 4, 6, 3, 5, 7, 1)
    return x.reshape(B, -1, p**3 * C)


def sincos3d(grid, dim):
    """3-D sin-cos ``[sin h, cos h, sin w, cos w, sin d, cos d]`` over an (h, w, d) 'ij' grid."""
    axes = torch.meshgrid(*[torch.arange(g, dtype=torch.float32) for g in grid], indexing='ij')
    k = dim // 6
    omega = 1. / 10000**(torch.arange(k, dtype=torch.float32) / k)
    feats = []
    for a in axes:
        out = a.flatten()[:, None] * omega[None]
        feats += [out.sin(), out.cos()]
    return torch.cat(feats, dim=1)[None]


def model_3d(fx):
    """mmmask.HiEndMAE with the fixture's sizes, official weights loaded through the converter;
    returns ``(model, conv3d weight, conv3d bias)``."""
    meta = fx['meta']
    enc, dec = meta['encoder_kwargs'], meta['decoder_kwargs']
    L = fx['state_dict']['encoder_pos_embed'].shape[1]
    p = meta['args']['patch_size']
    model = HiEndMAE(
        backbone=dict(type='mmmask.MaskedViT', img_size=(p, p * L), patch_size=p, in_channels=1,
                      arch=dict(embed_dims=enc['embed_dim'], num_layers=enc['depth'],
                                num_heads=enc['num_heads'],
                                feedforward_channels=4 * enc['embed_dim'])),
        neck=dict(type='mmmask.HiEndMAEDecoder', num_patches=L, embed_dim=enc['embed_dim'],
                  out_channels=p**3, decoder_embed_dim=dec['embed_dim'],
                  decoder_num_heads=dec['num_heads'], self_depth=dec['self_depth'],
                  num_taps=dec['cross_depth']),
        tap_indices=(3, 6, 9))
    sd = convert_hi_end_mae(fx['state_dict'])
    w = sd.pop('backbone.patch_embed.projection.weight')
    b = sd.pop('backbone.patch_embed.projection.bias')
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert set(missing) == {'backbone.patch_embed.projection.weight',
                            'backbone.patch_embed.projection.bias'}, missing
    assert not unexpected
    return model.eval(), w, b


def run_3d(fx):
    model, w, b = model_3d(fx)
    vol = fx['inputs']['volume']
    p = fx['meta']['args']['patch_size']
    patches = patchify3d(vol, p)
    B, L, P = patches.shape
    C = vol.shape[1]
    tokens = F.conv3d(patches.reshape(B * L, p, p, p, C).permute(0, 4, 1, 2, 3), w, b)
    tokens = tokens.reshape(B, L, -1)
    pos = model.backbone.pos_embed
    order = fx['inputs']['shuffle_indices']
    K = int(L * (1 - fx['meta']['args']['mask_ratio']))
    final, hidden = encode_visible_tokens(model.backbone, tokens + pos[:, 1:], pos[:, :1],
                                          order[:, :K])
    loss, out = model.decode_and_loss(final, hidden, order, K, patches)
    return model, dict(patches=patches, final=final, hidden=hidden, loss=loss, out=out)


@pytest.mark.parametrize('name', ['hiend_tiny.pt', 'hiend_tiny_noncubic.pt'])
def test_official_3d_parity(name):
    fx = load(name)
    o = fx['outputs']
    model, r = run_3d(fx)
    torch.testing.assert_close(r['patches'], o['patches'], **ATOL)
    torch.testing.assert_close(r['final'], o['encoder_out'], **ATOL)
    for mine, ref in zip(r['hidden'], o['encoder_hidden_states']):
        torch.testing.assert_close(mine, ref, **ATOL)
    torch.testing.assert_close(r['out'], o['decoder_out'], **ATOL)
    torch.testing.assert_close(r['loss'], o['loss'], **ATOL)
    r['loss'].backward()
    torch.testing.assert_close(model.neck.mask_token.grad, o['grad_mask_token'], **ATOL)
    torch.testing.assert_close(model.neck.projs[0].weight.grad,
                               o['grad_encoder_to_decoder0_weight'], **ATOL)


@pytest.mark.parametrize('name', ['hiend_tiny.pt', 'hiend_tiny_noncubic.pt'])
def test_3d_sincos_axis_order(name):
    fx = load(name)
    meta = fx['meta']
    size = meta['args']['img_size']
    size = (size, ) * 3 if isinstance(size, int) else tuple(size)
    grid = [s // meta['args']['patch_size'] for s in size]
    for key in ('encoder_pos_embed', 'decoder_pos_embed'):
        ref = fx['state_dict'][key]
        torch.testing.assert_close(sincos3d(grid, ref.shape[-1]), ref, **ATOL)


def test_decoder_inputs_match_official_taps():
    fx = load('hiend_tiny.pt')
    model, r = run_3d(fx)
    taps = fx['outputs']['decoder_inputs']
    for j, i in enumerate((3, 6, 9)):
        torch.testing.assert_close(model.neck.projs[j](r['hidden'][i]), taps[f'tap{i}'], **ATOL)


def toy_model():
    from mmmask.apis import build_model_from_cfg, load_config
    cfg = load_config(TOY)
    model = build_model_from_cfg(cfg).train()
    model.init_weights()
    return model, cfg


def test_2d_shapes_and_properties():
    torch.manual_seed(0)
    model, _ = toy_model()
    assert model.tap_indices == (0, 1, 2)
    imgs = torch.randn(3, 3, 32, 32)
    L, K = 16, 4
    ids = torch.stack([torch.randperm(L) for _ in range(3)])
    tokens, _, cls_pos = model.backbone.embed(imgs)
    final, hidden = encode_visible_tokens(model.backbone, tokens, cls_pos, ids[:, :K])
    # same encoder path as MaskedViT.forward_masked
    ref = model.backbone.forward_masked(imgs, ids_keep=ids[:, :K])
    torch.testing.assert_close(final, ref.tokens)
    assert len(hidden) == 4 and hidden[0].shape == (3, 1 + K, 128)
    from mmmask.models.selfsup.hpm import patchify
    patches = patchify(imgs, 8)
    loss, out = model.decode_and_loss(final, hidden, ids, K, patches)
    assert out.shape == (3, 1 + L, 192) and loss.ndim == 0 and torch.isfinite(loss)
    # the visible part of the input does not enter the loss; permuting the masked tokens'
    # order permutes the output rows accordingly (no cls/visible change)
    perm = torch.cat([ids[:, :K], ids[:, K:].flip(1)], dim=1)
    _, out2 = model.decode_and_loss(final, hidden, perm, K, patches)
    torch.testing.assert_close(out2[:, 1 + K:], out[:, 1 + K:].flip(1), atol=1e-5, rtol=1e-5)
    # decoder pos: 2-D sin-cos without a cls row
    assert model.neck.pos_embed.shape == (1, L, 64) and not model.neck.pos_embed.requires_grad


def test_toy_config_train_step():
    from mmengine.optim import OptimWrapper
    torch.manual_seed(0)
    model, _ = toy_model()
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    data = dict(inputs=torch.randint(0, 255, (4, 3, 32, 32), dtype=torch.uint8),
                data_samples=None)
    log = model.train_step(data, optim)
    assert torch.isfinite(log['loss'])
    # every decoder projection gets a gradient (all taps are used)
    model.zero_grad()
    model.loss(torch.randn(2, 3, 32, 32), None)['loss'].backward()
    for proj in model.neck.projs:
        assert proj.weight.grad is not None and proj.weight.grad.abs().sum() > 0


def test_bad_inputs():
    model, _ = toy_model()
    with pytest.raises(ValueError, match='encoder taps'):
        model.neck(torch.zeros(1, 5, 128), [torch.zeros(1, 5, 128)], torch.arange(16)[None])
    model.mask_generator = MODELS.build(
        dict(type='mmmask.DoubleMasking', generator=dict(type='mmmask.RandomMasking')))
    with pytest.raises(ValueError, match='RandomMasking'):
        model.loss(torch.randn(2, 3, 32, 32), None)
    neck = dict(type='mmmask.HiEndMAEDecoder', num_patches=16, embed_dim=192, out_channels=192,
                decoder_embed_dim=64, decoder_num_heads=4)
    bb = dict(type='mmmask.MaskedViT', arch='deit-tiny', img_size=32, patch_size=8)
    with pytest.raises(ValueError, match='tap_indices'):
        HiEndMAE(backbone=bb, neck=neck, tap_indices=(3, 6, 12))
    with pytest.raises(ValueError, match='tap_indices'):
        HiEndMAE(backbone=bb, neck=neck, tap_indices=(3, 6))
    with pytest.raises(ConversionError):
        convert_hi_end_mae({'foo': torch.zeros(1)})


@pytest.mark.parametrize('name,arch,patch,dec,heads', [
    ('keys_vit_base_p16.json', 'b', 16, 384, 12),
    ('keys_vit_large_p16.json', dict(embed_dims=1536, num_layers=12, num_heads=16,
                                     feedforward_channels=6144), 16, 528, 16),
    ('keys_vit_large_p12.json', dict(embed_dims=1536, num_layers=12, num_heads=16,
                                     feedforward_channels=6144), 12, 528, 16)])
def test_official_keys_convert(name, arch, patch, dec, heads):
    """Every official key (3-D ViT-B/L factories) converts; all but the 3-D patch embedding and
    position embeddings land on the 2-D model of the same widths with the right shapes, and the
    official parameter count is matched once the 3-D tensors are accounted for."""
    import json
    ref = json.load(open(osp.join(FIX, name)))
    sd = {k: torch.zeros(v) for k, v in ref['keys'].items()}
    full = convert_hi_end_mae(sd)
    assert sum(v.numel() for v in full.values()) == ref['num_parameters_unique'] + \
        full['backbone.pos_embed'].shape[-1]  # + the zero cls row of the encoder pos
    conv = convert_hi_end_mae(sd, drop_3d=True)
    enc = 1536 if isinstance(arch, dict) else 768
    with torch.device('meta'):
        model = HiEndMAE(
            backbone=dict(type='mmmask.MaskedViT', arch=arch, img_size=96, patch_size=patch),
            neck=dict(type='mmmask.HiEndMAEDecoder', num_patches=(96 // patch)**2, embed_dim=enc,
                      out_channels=patch**3, decoder_embed_dim=dec, decoder_num_heads=heads))
    ours = model.state_dict()
    assert set(ours) - set(conv) == {'backbone.pos_embed', 'neck.pos_embed',
                                     'backbone.patch_embed.projection.weight',
                                     'backbone.patch_embed.projection.bias'}
    assert set(conv) <= set(ours)
    assert all(tuple(conv[k].shape) == tuple(ours[k].shape) for k in conv)


@pytest.mark.slow
def test_converter_cli(tmp_path):
    import subprocess
    import sys
    fx = load('hiend_tiny.pt')
    src, dst = str(tmp_path / 'official.pth'), str(tmp_path / 'ours.pth')
    torch.save({'state_dict': fx['state_dict']}, src)
    subprocess.run([sys.executable, osp.join(REPO, 'tools', 'model_converters',
                                             'hi_end_mae2mmmask.py'), src, dst, '--drop-3d'],
                   check=True, capture_output=True)
    out = torch.load(dst, weights_only=True)['state_dict']
    assert 'neck.projs.3.weight' in out and 'backbone.pos_embed' not in out
