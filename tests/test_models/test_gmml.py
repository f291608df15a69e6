"""GMML (Group Masked Model Learning): parity with the official model on the fixtures of
tests/data/parity/gmml/README.md (through our converter), corruption properties, any-generator
use, the toy config and bad inputs."""
import json
import os.path as osp

import pytest
import torch

from mmmask.models.converters import ConversionError, convert_gmml
from mmmask.models.masking import GMMLCorruption, group_mask
from mmmask.models.selfsup.gmml import GMML, dino_resize_pos_embed
from mmmask.registry import MODELS
from mmmask.utils import register_all_modules

register_all_modules()

FIX = osp.join(osp.dirname(__file__), '..', 'data', 'parity', 'gmml')
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY = osp.join(REPO, 'configs', 'gmml', 'gmml_vit-tiny-p8_1xb64-30e_toy-pretrain.py')
ATOL = dict(atol=1e-5, rtol=1e-5)


def fixture_model(**kwargs) -> GMML:
    """mmmask.GMML with the fixture's sizes (24-d x 12 blocks x 2 heads, patch 16, 48 px)."""
    model = GMML(
        backbone=dict(type='mmmask.MaskedViT', fixed_pos_embed=False, img_size=48, patch_size=16,
                      drop_path_rate=0.1,
                      arch=dict(embed_dims=24, num_layers=12, num_heads=2,
                                feedforward_channels=96)),
        head=dict(type='mmmask.GMMLReconHead', in_dim=24, in_chans=3, patch_size=16),
        **dict(dict(recons_layers=(5, 7, 9, 11)), **kwargs))
    model.init_weights()
    return model


def load(name):
    return torch.load(osp.join(FIX, name), weights_only=True)


@pytest.fixture(scope='module', params=['gmml_tiny.pt', 'gmml_tiny_local.pt'])
def fix(request):
    return load(request.param)


@pytest.fixture
def model(fix):
    m = fixture_model()
    missing, unexpected = m.load_state_dict(convert_gmml(fix['state_dict']), strict=True)
    assert not missing and not unexpected
    return m.eval()


def test_backbone_multilayer_average(fix, model):
    """LN(mean of blocks 6, 8, 10, 12 (1-based), cls included) without the cls token."""
    x = torch.cat(fix['inputs']['corrupted_crops_global'])
    with torch.no_grad():
        feats, grid = model.encode(x)
    assert grid == (3, 3)
    torch.testing.assert_close(feats, fix['outputs']['backbone_global'], **ATOL)


def test_reconstruction_and_loss(fix, model):
    inp, out = fix['inputs'], fix['outputs']
    with torch.no_grad():
        rec = model.forward_views(inp['corrupted_crops_global'])
        torch.testing.assert_close(rec, out['recons_global'], **ATOL)
        clean = torch.cat(inp['clean_crops_global'])
        mask = torch.cat(inp['masks_crops_global'])[:, :1]
        loss = model.reconstruction_loss(rec, clean, mask)
        loss_all = (rec - clean).abs().mean()
        if 'clean_crops_local' in inp:  # local crops: DINO pos-embed interpolation, 2nd term
            rec_l = model.forward_views(inp['corrupted_crops_local'])
            torch.testing.assert_close(rec_l, out['recons_local'], **ATOL)
            clean_l = torch.cat(inp['clean_crops_local'])
            loss = loss + model.reconstruction_loss(rec_l, clean_l,
                                                    torch.cat(inp['masks_crops_local'])[:, :1])
            loss_all = loss_all + (rec_l - clean_l).abs().mean()
    torch.testing.assert_close(loss, out['loss'], **ATOL)
    torch.testing.assert_close(loss_all, out['loss_drop_only0'], **ATOL)


def test_loss_from_views_matches_fixture(fix, model, monkeypatch):
    """``loss()`` on the clean views with the fixture's corruption reproduces the official loss
    (global crops one mean, local crops a second term)."""
    inp = fix['inputs']
    views = list(inp['clean_crops_global']) + list(inp.get('clean_crops_local', []))
    corrupted = list(inp['corrupted_crops_global']) + list(inp.get('corrupted_crops_local', []))
    masks = list(inp['masks_crops_global']) + list(inp.get('masks_crops_local', []))
    lookup = {id(v): (c, m[:, :1]) for v, c, m in zip(views, corrupted, masks)}

    class Fixed(torch.nn.Module):
        def forward(self, batch_size, grid, device=None, images=None, **signals):
            from mmmask.models.masking import MaskSample
            c, m = lookup[id(images)]
            return MaskSample(mask=None, pixel_mask=m, images=c)

    model.mask_generator = Fixed()
    with torch.no_grad():
        losses = model.loss(views)
    total = losses['loss'] + losses.get('loss_local', 0)
    torch.testing.assert_close(total, fix['outputs']['loss'], **ATOL)


def test_dino_interpolation_differs_from_mmpretrain():
    """The official +0.1 scale trick is not mmpretrain's size-based bicubic resize."""
    from mmpretrain.models.utils import resize_pos_embed
    pos = torch.randn(1, 10, 8)
    dino = dino_resize_pos_embed(pos, (3, 3), (2, 2))
    mmp = resize_pos_embed(pos, (3, 3), (2, 2), mode='bicubic', num_extra_tokens=1)
    assert dino.shape == mmp.shape == (1, 5, 8)
    assert not torch.allclose(dino, mmp, atol=1e-4)
    assert dino_resize_pos_embed(pos, (3, 3), (3, 3)) is pos


def test_converter_keys_full_size():
    """Every official vit_small/vit_base + RECHead key converts onto mmmask.GMML, shapes equal."""
    for name, arch, depth in (('keys_vit_small_rechead.json', 'deit-small', 12),
                              ('keys_vit_base_rechead.json', 'b', 12)):
        with open(osp.join(FIX, name)) as f:
            keys = json.load(f)
        keys = keys.get('keys', keys) if isinstance(keys, dict) else keys
        shapes = {k: tuple(v) for k, v in (keys.items() if isinstance(keys, dict) else keys)}
        converted = convert_gmml({k: torch.empty(s) for k, s in shapes.items()})
        dim = shapes['backbone.cls_token'][-1]
        m = GMML(backbone=dict(type='mmmask.MaskedViT', fixed_pos_embed=False, arch=arch,
                               img_size=224, patch_size=16),
                 head=dict(type='mmmask.GMMLReconHead', in_dim=dim, patch_size=16))
        ref = m.state_dict()
        assert set(converted) == set(ref)
        for k, v in converted.items():
            assert tuple(v.shape) == tuple(ref[k].shape), k


def test_converter_rejects_unknown_keys():
    with pytest.raises(ConversionError):
        convert_gmml({'backbone.foo.weight': torch.zeros(1)})
    out = convert_gmml({'module.backbone.norm.weight': torch.zeros(1),
                        'module.head_recons.convTrans.bias': torch.zeros(3)}, with_head=False)
    assert list(out) == ['backbone.ln1.weight']


# ---------------------------------------------------------------- corruption properties
@pytest.mark.parametrize('align', [1, 4])
def test_group_mask_coverage_and_alignment(align):
    torch.manual_seed(0)
    target = torch.rand(32) * 0.25 * 1024 + 0.5 * 1024
    mask = group_mask(32, 32, 32, target, align=align)
    cover = mask.flatten(1).sum(1).float()
    assert (cover >= target).all()
    # official: a rectangle is pasted only while the coverage is below the target, so the
    # overshoot is less than one rectangle (< 9 x 9 px at 32 px)
    assert (cover - target < 81).all()
    if align > 1:  # rectangles snapped to the grid: constant on align x align cells
        cells = mask.reshape(32, 32 // align, align, 32 // align, align)
        assert (cells.all(2).all(-1) == cells.any(2).any(-1)).all()


def test_corruption_properties():
    torch.manual_seed(0)
    gen = GMMLCorruption(drop_perc=0.75, drop_replace=0.3)
    x = torch.rand(64, 3, 32, 32) + 5.0  # clean pixels far from N(0, 1) noise
    s = gen(64, (4, 4), images=x)
    assert s.mask is None and s.pixel_mask.shape == (64, 1, 32, 32)
    pm = s.pixel_mask.bool().expand(-1, 3, -1, -1)
    rep = s.extras['replaced']
    assert 10 < int(rep.sum()) < 54  # replace step with probability 1/2
    # unmasked pixels untouched everywhere
    assert torch.equal(s.images[~pm], x[~pm])
    cover = s.pixel_mask.flatten(1).mean(1)
    # noise images: coverage >= U(0.5, 0.75) target >= 0.5, noise only under the mask
    noise = ~rep
    assert (cover[noise] >= 0.5).all()
    noisy = s.images[noise][pm[noise]]
    assert noisy.abs().mean() < 1.5 and (noisy < 4).float().mean() > 0.99
    # replaced images: coverage >= 0.3 (exactly U(0.3, 0.3)), pixels copied from the source
    assert (cover[rep] >= 0.3).all() and (cover[rep] < 0.3 + 81 / 1024).all()
    src = s.extras['source']
    for i in rep.nonzero().flatten().tolist():
        m = pm[i]
        assert torch.equal(s.images[i][m], x[src[i]][m])


def test_corruption_needs_images_and_valid_sizes():
    gen = GMMLCorruption()
    with pytest.raises(ValueError, match='images'):
        gen(2, (4, 4))
    with pytest.raises(ValueError):
        GMMLCorruption(drop_align=16)(2, (1, 1), images=torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError):
        GMMLCorruption(drop_type='blur')


def test_token_generator_gives_noise_on_masked_patches():
    """Any compatible generator: a token mask becomes a pixel mask filled with noise."""
    torch.manual_seed(0)
    m = fixture_model(mask_generator=dict(type='mmmask.RandomMasking', ratio=0.75))
    x = torch.full((2, 3, 48, 48), 7.0)
    s = m.corrupt(x)
    assert s.pixel_mask.shape == (2, 1, 48, 48)
    assert torch.allclose(s.pixel_mask.mean((1, 2, 3)), torch.tensor(7 / 9).expand(2))
    pm = s.pixel_mask.bool().expand(-1, 3, -1, -1)
    assert (s.images[~pm] == 7).all() and (s.images[pm] < 6).float().mean() > 0.99
    losses = m.loss([x, x])
    assert torch.isfinite(losses['loss'])


def test_incompatible_generator_raises():
    m = fixture_model(mask_generator=dict(type='mmmask.DoubleMasking'))
    with pytest.raises(ValueError, match='MaskSample'):
        m.loss([torch.zeros(2, 3, 48, 48)])
    with pytest.raises(ValueError, match='recons_layers'):
        fixture_model(recons_layers=(12, ))


def test_toy_config_train_step():
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.structures import DataSample

    from mmmask.apis.model_inputs import load_config
    cfg = load_config(TOY)
    model = MODELS.build(cfg.model)
    model.init_weights()
    ow = build_optim_wrapper(model, cfg.optim_wrapper)
    data = dict(inputs=torch.randint(0, 255, (4, 3, 32, 32), dtype=torch.uint8),
                data_samples=[DataSample() for _ in range(4)])
    out = model.train_step(data, ow)
    assert torch.isfinite(out['loss'])
    # two views (the paper config's MultiView) go through as one mean
    out = model.loss([torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)])
    assert set(out) == {'loss'}


def test_converter_cli(tmp_path, fix):
    """tools/model_converters/gmml2mmmask.py on a DDP-style official checkpoint."""
    from conftest import run_tool
    src, dst = str(tmp_path / 'ckpt.pth'), str(tmp_path / 'out.pth')
    torch.save({'SiT_model': {'module.' + k: v for k, v in fix['state_dict'].items()},
                'epoch': 1}, src)
    run_tool(['model_converters/gmml2mmmask.py', src, dst], cwd=str(tmp_path))
    out = torch.load(dst, weights_only=True)['state_dict']
    m = fixture_model()
    m.load_state_dict(out, strict=True)
