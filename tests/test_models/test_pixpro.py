"""PixPro (Pixel-to-Propagation, CVPR'21): parity with the official model and crop transforms on
the fixtures of tests/data/parity/pixpro/README.md, the converter against the official R50 keys,
exact-formula/property tests, EMATeacher(buffers='own'), the toy config, bad inputs."""
import json
import math
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample
from torch import nn

from mmmask.models.converters.common import ConversionError, rename_keys
from mmmask.models.converters.pixpro import PIXPRO_RULES, convert_pixpro
from mmmask.models.selfsup import EMATeacher
from mmmask.models.selfsup.pixpro import (PixelPropagation, PixPro, pixel_centers,
                                          pixel_contrast_loss, pixel_positive_mask)
from mmmask.registry import MODELS, TRANSFORMS
from mmmask.utils import register_all_modules

register_all_modules()

FIX = osp.join(osp.dirname(__file__), '..', 'data', 'parity', 'pixpro')
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY = osp.join(REPO, 'configs', 'pixpro', 'pixpro_resnet18-c16_1xb32-6e_toy-pretrain.py')
ATOL = dict(atol=1e-5, rtol=1e-5)


def load(name):
    return torch.load(osp.join(FIX, name), weights_only=True)


@pytest.fixture(scope='module')
def fix():
    return load('pixpro_tiny.pt')


def set_progress(it: int, max_iters: int) -> None:
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', it)
    hub.update_info('max_iters', max_iters)


@pytest.fixture
def progress():
    yield set_progress
    set_progress(0, 1)


def tiny_pixpro(in_dim=32, inner_dim=64, backbone=None) -> PixPro:
    model = PixPro(
        backbone=backbone or dict(type='mmpretrain.ResNet_CIFAR', depth=18, stem_channels=8,
                                  base_channels=8, out_indices=(3,)),
        neck=dict(type='mmmask.MLP2dNeck', in_channels=in_dim, hid_channels=inner_dim,
                  out_channels=256),
        head=dict(type='mmmask.PixProHead', in_channels=256, gamma=2., clamp_value=0.,
                  transform_layers=1, pos_ratio=0.7),
        momentum=0.99)
    model.init_weights()
    return model


def fixture_model(fix) -> PixPro:
    """The fixture's stand-in: a parameter-free identity "encoder" (inputs are C5 maps)."""
    cfg = fix['meta']['config']
    model = tiny_pixpro(cfg['in_dim'], cfg['inner_dim'])
    model.backbone = nn.Identity()
    model.teacher = EMATeacher(nn.Sequential(model.backbone, model.neck), decay=0.99,
                               schedule='cosine', end_decay=1.0, buffers='own')
    state = dict(rename_keys(fix['state_dict'], PIXPRO_RULES, 'PixPro'))
    missing, unexpected = model.load_state_dict(state, strict=True)
    assert not missing and not unexpected
    return model.train()


def test_parity_forward_momentum_and_grads(fix, progress):
    """Quirks 1-6: loss (sum of two directions), projections, PPM, key branch after the in-forward
    momentum update with its own BN statistics, online BN buffers, gradients."""
    cfg, inp, out = fix['meta']['config'], fix['inputs'], fix['outputs']
    per_epoch = cfg['num_instances'] / cfg['batch_size']
    K, k = int(per_epoch * cfg['epochs']), int(per_epoch * (cfg['start_epoch'] - 1))
    assert (k, K) == (200, 500)
    progress(k, K)
    model = fixture_model(fix)
    res = model.forward_train(inp['feat_1'], inp['feat_2'], inp['coord_1'], inp['coord_2'])
    assert math.isclose(res['momentum'], out['contrast_momentum'], rel_tol=0, abs_tol=1e-12)
    assert math.isclose(res['momentum'], 1 - 0.01 * (math.cos(math.pi * k / K) + 1) / 2,
                        abs_tol=1e-12)
    torch.testing.assert_close(res['loss'], out['loss'], atol=1e-6, rtol=0)
    torch.testing.assert_close(res['loss_dir_12'], out['loss_dir_12'], atol=1e-6, rtol=0)
    torch.testing.assert_close(res['loss_dir_21'], out['loss_dir_21'], atol=1e-6, rtol=0)
    torch.testing.assert_close(res['loss'], res['loss_dir_12'] + res['loss_dir_21'])
    torch.testing.assert_close(res['proj1'], out['proj_1'], **ATOL)
    torch.testing.assert_close(res['proj2'], out['proj_2'], **ATOL)
    torch.testing.assert_close(model.head.ppm(res['proj1']), out['featprop_1'], **ATOL)
    torch.testing.assert_close(res['pred2'], F.normalize(out['featprop_2'], dim=1), **ATOL)
    torch.testing.assert_close(res['key1'], out['proj_1_ng_raw'], **ATOL)
    torch.testing.assert_close(res['key2'], out['proj_2_ng_raw'], **ATOL)
    key_state = model.teacher.module[1].state_dict()
    for name, value in out['projector_k_after_update'].items():
        torch.testing.assert_close(key_state[name], value, **ATOL, msg=name)
    for name, value in out['projector_bn_after'].items():
        torch.testing.assert_close(model.neck.state_dict()[name], value, **ATOL, msg=name)
    res['loss'].backward()
    torch.testing.assert_close(model.neck.linear1.weight.grad,
                               out['grad_projector_linear1_weight'], **ATOL)
    torch.testing.assert_close(model.head.ppm.value_transform.weight.grad,
                               out['grad_value_transform_weight'], **ATOL)
    assert all(p.grad is None for p in model.teacher.parameters())


def test_key_bn_is_its_own_and_runs_in_train_mode(fix, progress):
    """Quirk 1-2: the key projector's running stats come from its own batch-statistics forwards
    (not copied/averaged from the online projector, whose stats differ)."""
    progress(200, 500)
    model = fixture_model(fix)
    assert model.teacher.training and model.teacher.module.training
    before = model.teacher.module[1].bn1.running_mean.clone()
    model.forward_train(*(fix['inputs'][k] for k in ('feat_1', 'feat_2', 'coord_1', 'coord_2')))
    after = model.teacher.module[1].bn1.running_mean
    assert not torch.allclose(after, before)
    assert not torch.allclose(after, model.neck.bn1.running_mean)
    assert model.teacher.module[1].bn1.num_batches_tracked.item() == \
        fix['state_dict']['projector_k.bn1.num_batches_tracked'].item() + 2


def test_ema_teacher_buffer_modes():
    student = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    for mode in ('copy', 'average', 'own'):
        teacher = EMATeacher(student, decay=0.5, buffers=mode)
        teacher.module[1].running_mean.fill_(2.0)
        student[1].running_mean.fill_(4.0)
        w0 = teacher.module[0].weight.clone()
        teacher.update(student)
        torch.testing.assert_close(teacher.module[0].weight, 0.5 * w0 + 0.5 * student[0].weight)
        expect = dict(copy=4.0, average=3.0, own=2.0)[mode]
        assert torch.all(teacher.module[1].running_mean == expect), mode
        teacher.train()
        assert teacher.module.training == (mode == 'own')
    # the old flag keeps its meaning
    assert EMATeacher(student, update_buffers=True).buffers_mode == 'average'
    assert EMATeacher(student).buffers_mode == 'copy'
    with pytest.raises(ValueError, match='buffers mode'):
        EMATeacher(student, buffers='mean')
    with pytest.raises(ValueError, match='contradicts'):
        EMATeacher(student, update_buffers=True, buffers='own')


def test_pixel_positive_mask_formula_and_flip():
    """Quirk 4: centres (x+0.5)·w/W + x_ul; distance / max bin diagonal < 0.7; a flip maps pixels
    right to left (a flipped identical crop pairs pixel (i, j) with (i, W-1-j))."""
    H = W = 4
    rect = torch.tensor([[0.1, 0.2, 0.9, 0.6]])
    cx, cy, diag = pixel_centers(rect, H, W)
    assert math.isclose(cx[0, 1].item(), 1.5 * 0.8 / 4 + 0.1, abs_tol=1e-7)
    assert math.isclose(cy[0, 4].item(), 1.5 * 0.4 / 4 + 0.2, abs_tol=1e-7)
    assert math.isclose(diag.item(), math.hypot(0.2, 0.1), abs_tol=1e-7)
    # a flat bin: vertical neighbours are 0.1 / 0.224 = 0.45 diagonals apart -> positives
    m = pixel_positive_mask(rect, rect, H, W)[0]
    assert m[0, 4] == 1 and m[0, 1] == 0
    # square bins: neighbours are 1/sqrt(2) = 0.707 diagonals apart, just beyond 0.7
    coord = torch.tensor([[0.1, 0.2, 0.9, 1.0]])
    same = pixel_positive_mask(coord, coord, H, W)[0]
    torch.testing.assert_close(same, torch.eye(16))
    flipped = coord[:, [2, 1, 0, 3]]
    m = pixel_positive_mask(coord, flipped, H, W)[0]
    idx = torch.arange(16).view(4, 4).flip(1).flatten()
    torch.testing.assert_close(m, torch.eye(16)[idx])
    # pos_ratio scales the neighbourhood; disjoint crops have no positives -> loss 0
    assert pixel_positive_mask(coord, coord, H, W, pos_ratio=1.2)[0].sum() > 16
    far = torch.tensor([[0.0, 0.0, 0.1, 0.1]])
    q = F.normalize(torch.randn(1, 8, H, W), dim=1)
    assert pixel_contrast_loss(q, q, coord, far).item() == 0.0
    # identical normalised maps of the same crop: loss -2 (cos 1 on every positive)
    assert math.isclose(pixel_contrast_loss(q, q, coord, coord).item(), -2.0, abs_tol=1e-5)


def test_ppm_formula():
    """Quirk 3: y_i = Σ_j max(cos(x_i, x_j), 0)^γ · normalize(value(x))_j."""
    torch.manual_seed(0)
    ppm = PixelPropagation(6, gamma=2., clamp_value=0., transform_layers=1)
    x = torch.randn(2, 6, 3, 3)
    v = F.normalize(ppm.value_transform(x), dim=1).flatten(2)
    xn = F.normalize(x, dim=1).flatten(2)
    y = torch.zeros(2, 6, 9)
    for n in range(2):
        for i in range(9):
            for j in range(9):
                s = max(float(xn[n, :, i] @ xn[n, :, j]), 0.) ** 2
                y[n, :, i] += s * v[n, :, j]
    torch.testing.assert_close(ppm(x), y.view(2, 6, 3, 3), atol=1e-5, rtol=1e-5)
    assert isinstance(PixelPropagation(6, transform_layers=0).value_transform, nn.Identity)
    with pytest.raises(ValueError, match='transform_layers'):
        PixelPropagation(6, transform_layers=3)


def test_coord_transform_parity():
    """Quirk 7: crop box (j/(W-1), i/(H-1), (j+w-1)/(W-1), (i+h-1)/(H-1)); flip swaps x."""
    fx = load('pixpro_coord_transform.pt')
    crop = TRANSFORMS.build(dict(type='mmmask.RandomResizedCropWithCoord',
                                 scale=fx['inputs']['out_size']))
    flip = TRANSFORMS.build(dict(type='mmmask.RandomFlipWithCoord', prob=1.0))
    for row, want, want_flip in zip(fx['inputs']['params'].tolist(), fx['outputs']['coord'],
                                    fx['outputs']['coord_hflip']):
        i, j, h, w, height, width = row
        img = np.random.randint(0, 255, (height, width, 3), dtype=np.uint8)
        res = crop.apply_crop(dict(img=img), i, j, h, w, height, width)
        assert res['img'].shape[:2] == (16, 16)
        np.testing.assert_allclose(res['coord'], want.numpy(), atol=1e-7, rtol=0)
        np.testing.assert_array_equal(res['img'], crop.apply_crop(dict(img=img), i, j, h, w,
                                                                  height, width)['img'])
        flipped = flip(dict(img=res['img'].copy(), coord=res['coord']))
        np.testing.assert_allclose(flipped['coord'], want_flip.numpy(), atol=1e-7, rtol=0)
        np.testing.assert_array_equal(flipped['img'], res['img'][:, ::-1])


def test_coord_transforms_random_and_multiview():
    np.random.seed(0)
    img = np.random.randint(0, 255, (40, 50, 3), dtype=np.uint8)
    view = [dict(type='mmmask.RandomResizedCropWithCoord', scale=16, crop_ratio_range=(0.2, 1.)),
            dict(type='mmmask.RandomFlipWithCoord', prob=0.5)]
    mv = TRANSFORMS.build(dict(type='mmmask.MultiViewWithKeys', transforms=[view], num_views=2,
                               keys=['coord']))
    seen_flip = False
    for _ in range(20):
        out = mv(dict(img=img.copy()))
        assert len(out['img']) == 2 and len(out['coord']) == 2
        for c in out['coord']:
            assert c.dtype == np.float32 and np.all((c >= 0) & (c <= 1))
            assert c[3] > c[1]
            seen_flip |= bool(c[0] > c[2])
    assert seen_flip
    vflip = TRANSFORMS.build(dict(type='mmmask.RandomFlipWithCoord', prob=1.0,
                                  direction='vertical'))
    c = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
    np.testing.assert_array_equal(vflip(dict(img=img[:4, :4], coord=c))['coord'],
                                  np.array([0.1, 0.4, 0.3, 0.2], np.float32))
    with pytest.raises(KeyError, match='RandomResizedCropWithCoord'):
        vflip(dict(img=img))
    with pytest.raises(ValueError, match='direction'):
        TRANSFORMS.build(dict(type='mmmask.RandomFlipWithCoord', direction='diagonal'))


def fake_official_state():
    keys = load_keys()['keys']
    return {k: torch.zeros(1).expand(*v) if v else torch.zeros(()) for k, v in keys.items()}


def load_keys():
    with open(osp.join(FIX, 'keys_pixpro_r50.json')) as f:
        return json.load(f)


def r50_pixpro() -> PixPro:
    return PixPro(backbone=dict(type='mmpretrain.ResNet', depth=50, out_indices=(3,)),
                  neck=dict(type='mmmask.MLP2dNeck', in_channels=2048, hid_channels=4096,
                            out_channels=256),
                  head=dict(type='mmmask.PixProHead', in_channels=256))


def test_converter_matches_official_keys():
    """Every one of the 656 official entries maps onto mmmask.PixPro (R50) with equal shape, and
    the backbone part onto mmpretrain/mmdet ResNet-50."""
    official = fake_official_state()
    assert len(official) == 656
    converted = convert_pixpro({'module.' + k: v for k, v in official.items()})
    ref = r50_pixpro().state_dict()
    assert set(converted) == set(ref)
    for k, v in converted.items():
        assert tuple(v.shape) == tuple(ref[k].shape), k
    bb = convert_pixpro(official, backbone_only=True)
    assert len(bb) == 318 and all(k.startswith('backbone.') for k in bb)
    from mmdet.models.backbones import ResNet as DetResNet
    from mmpretrain.models.backbones import ResNet as ClsResNet
    for cls in (ClsResNet, DetResNet):
        ref_bb = cls(depth=50).state_dict()
        stripped = {k[len('backbone.'):]: v for k, v in bb.items()}
        assert set(stripped) == set(ref_bb), cls
        assert all(tuple(stripped[k].shape) == tuple(ref_bb[k].shape) for k in ref_bb)


def test_converter_bad_input():
    with pytest.raises(ConversionError, match='not a PixPro checkpoint'):
        convert_pixpro({'patch_embed.proj.weight': torch.zeros(1)})
    official = {k: v for k, v in fake_official_state().items() if not k.startswith('encoder_k')}
    official['projector_instance.linear1.weight'] = torch.zeros(1)
    with pytest.raises(ConversionError, match='instance-branch'):
        convert_pixpro(official)
    official['foo.bar'] = torch.zeros(1)
    with pytest.raises(ConversionError, match='foo.bar'):
        convert_pixpro(official, backbone_only=True)


def test_init_copies_online_into_key_branch():
    model = tiny_pixpro(64, 32)
    for (n, p), (_, q) in zip(nn.Sequential(model.backbone, model.neck).named_parameters(),
                              model.teacher.module.named_parameters()):
        torch.testing.assert_close(p, q, msg=n)
        assert not q.requires_grad


def views_and_samples(n=4, size=32):
    torch.manual_seed(0)
    imgs = [torch.randint(0, 255, (3, size, size)).float() for _ in range(2 * n)]
    samples = []
    for b in range(n):
        ds = DataSample()
        ds.set_field([np.array([0., 0., 1., 1.], np.float32),
                      np.array([0.9, 0.1, 0.2, 0.8], np.float32)], 'coord')
        samples.append(ds)
    return dict(inputs=[torch.stack(imgs[:n]), torch.stack(imgs[n:])], data_samples=samples)


def test_loss_step_and_bad_input(progress):
    progress(0, 10)
    model = tiny_pixpro(64, 32).train()
    batch = model.data_preprocessor(views_and_samples(), training=True)
    losses = model(**batch, mode='loss')
    assert set(losses) >= {'loss', 'pos_cos', 'neg_cos', 'pos_frac', 'pred_std', 'momentum'}
    assert -4.0 <= losses['loss'].item() <= 4.0 and losses['pred_std'] > 0
    assert math.isclose(losses['momentum'].item(), 0.99, abs_tol=1e-6)
    losses['loss'].backward()
    assert model.backbone.conv1.weight.grad is not None
    feats = model.extract_feat(batch['inputs'][0])
    assert feats[-1].shape == (4, 64, 4, 4)
    with pytest.raises(ValueError, match='data_sample.coord'):
        model.loss(batch['inputs'], [DataSample() for _ in range(4)])
    with pytest.raises(ValueError, match='two views'):
        model.loss(batch['inputs'][0], batch['data_samples'])
    with pytest.raises(ValueError, match='momentum'):
        tiny_pixpro().__class__(backbone=dict(type='mmpretrain.ResNet_CIFAR', depth=18), neck=dict(
            type='mmmask.MLP2dNeck', in_channels=512), head=dict(type='mmmask.PixProHead'),
            momentum=1.5)
    with pytest.raises(ValueError, match='feature map'):
        model.neck(torch.zeros(2, 64))


def test_toy_config_builds_model_and_pipeline():
    cfg = Config.fromfile(TOY)
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert pipeline[0]['type'] == 'LoadImageFromFile'
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
        mv = TRANSFORMS.build(pipeline[1])
    assert isinstance(model, PixPro)
    img = np.random.randint(0, 255, (32, 32, 3), dtype=np.uint8)
    out = mv(dict(img=img))
    assert len(out['coord']) == 2 and out['img'][0].shape[:2] == (32, 32)


def test_method_signals_formulas():
    torch.manual_seed(0)
    model = tiny_pixpro(64, 32)
    pred = F.normalize(torch.randn(3, 8, 2, 2), dim=1)
    key = torch.randn(3, 8, 2, 2)
    c1 = torch.tensor([[0., 0., 1., 1.]]).repeat(3, 1)
    sig = model.signals(pred, key, c1, c1)
    k = F.normalize(key, dim=1)
    pairs = [(pred[n, :, a // 2, a % 2] @ k[m, :, b // 2, b % 2]).item()
             for n in range(3) for m in range(3) if n != m for a in range(4) for b in range(4)]
    assert math.isclose(sig['neg_cos'].item(), sum(pairs) / len(pairs), abs_tol=1e-6)
    same = [(pred[n, :, a // 2, a % 2] @ k[n, :, a // 2, a % 2]).item()
            for n in range(3) for a in range(4)]  # same crop: only matching pixels are positive
    assert math.isclose(sig['pos_cos'].item(), sum(same) / len(same), abs_tol=1e-6)
    assert math.isclose(sig['pos_frac'].item(), 4 / 16, abs_tol=1e-7)
    collapsed = model.signals(F.normalize(torch.ones(3, 8, 2, 2), dim=1), key, c1, c1)
    assert collapsed['pred_std'].item() < 1e-6


def test_converter_cli(tmp_path, monkeypatch, capsys):
    """tools/model_converters/pixpro2mmmask.py on an official-layout checkpoint (``model`` with
    the DDP ``module.`` prefix), full and backbone-only; a wrong checkpoint exits with 2."""
    import importlib.util
    import sys
    spec = importlib.util.spec_from_file_location(
        'pixpro2mmmask', osp.join(REPO, 'tools', 'model_converters', 'pixpro2mmmask.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    src = tmp_path / 'ckpt_epoch_400.pth'
    torch.save({'model': {'module.' + k: v for k, v in fake_official_state().items()},
                'epoch': 400}, src)
    for extra, n in (([], 656), (['--backbone-only'], 318)):
        dst = tmp_path / f'out{n}.pth'
        monkeypatch.setattr(sys, 'argv', ['pixpro2mmmask.py', str(src), str(dst)] + extra)
        assert tool.main() == 0
        out = torch.load(dst, weights_only=False)
        assert len(out['state_dict']) == n and out['meta']['converter'] == 'pixpro2mmmask'
    bad = tmp_path / 'bad.pth'
    torch.save({'model': {'fc.weight': torch.zeros(2)}}, bad)
    monkeypatch.setattr(sys, 'argv', ['pixpro2mmmask.py', str(bad), str(tmp_path / 'x.pth')])
    assert tool.main() == 2
    assert 'not a PixPro checkpoint' in capsys.readouterr().err
