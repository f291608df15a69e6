"""Layer masking (Balasubramanian & Feizi, ICCV 2023): parity with the official sal_resnet on the
fixtures of tests/data/parity/layer_masking/, the plain-ResNet equivalences, the classifier
integration and the evaluation measures."""
import copy
import os.path as osp

import pytest
import torch

import mmmask.models  # noqa: F401
from mmmask.evaluation.explanation.layer_masking import (
    MaskingPredictor, box_mask, deletion_curve, fill_input, lime_attributions, mask_shape_leak,
    missingness_bias, patch_segments, rolled_mask, segments_to_masks, superpixel_segments,
    to_layer_masked)
from mmmask.models.backbones.layer_masked_resnet import (
    LayerMaskedResNet, layer_masked_resnet_stages, masked_global_avg_pool, mode_from_it,
    neighbour_fill, use_layer_mask)
from mmmask.registry import MODELS

# mmpretrain classifiers built here resolve their default data preprocessor in the current scope
pytestmark = pytest.mark.usefixtures('mmpretrain_scope')

FIXTURES = osp.join(osp.dirname(osp.dirname(__file__)), 'data', 'parity', 'layer_masking')
CASES = ['fill', 'fill_patchgrid', 'zero', 'pconv']


def official_keys_to_mmpretrain(state_dict):
    """Official (torchvision) ResNet keys → mmpretrain ``ImageClassifier`` keys: the backbone
    keys are identical, ``fc`` becomes the head's ``fc``."""
    return {(f'head.{k}' if k.startswith('fc.') else f'backbone.{k}'): v
            for k, v in state_dict.items()}


def build_fixture_classifier(meta):
    kw = meta['ctor_kwargs']
    cfg = dict(type='mmpretrain.ImageClassifier',
               backbone=dict(type='mmmask.LayerMaskedResNet', depth=50, stem_channels=kw['stem'],
                             base_channels=kw['planes'][0], stage_blocks=kw['layers'],
                             out_indices=(3, ), masked_pooling=True),
               head=dict(type='mmpretrain.LinearClsHead', num_classes=kw['num_classes'],
                         in_channels=kw['planes'][3] * 4))
    return MODELS.build(cfg).eval()


@pytest.mark.parametrize('case', CASES)
def test_parity_with_official(case):
    data = torch.load(osp.join(FIXTURES, f'lm_resnet_{case}.pt'), weights_only=False)
    model = build_fixture_classifier(data['meta'])
    model.load_state_dict(official_keys_to_mmpretrain(data['state_dict']), strict=True)
    inputs, out = data['inputs'], data['outputs']
    mode = mode_from_it(inputs['it'])
    feat_atol = 5e-5 if mode == 'pconv' else 1e-5
    with torch.no_grad():
        with use_layer_mask(model, inputs['mask'], mode):
            logits = model(inputs['img'], mode='tensor')
        plain = model(inputs['img'], mode='tensor')
        stages = list(layer_masked_resnet_stages(model.backbone, inputs['img'], inputs['mask'],
                                                 mode))
    torch.testing.assert_close(logits, out['logits'], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(plain, out['plain_logits_unmasked_path'], atol=1e-5, rtol=1e-5)
    assert [s[0] for s in stages] == ['maxpool', 'layer1', 'layer2', 'layer3', 'layer4']
    for name, feat, mask in stages:
        torch.testing.assert_close(feat, out['stages'][name]['feat'], atol=feat_atol, rtol=1e-5)
        assert torch.equal(mask, out['stages'][name]['mask']), name


@pytest.mark.parametrize('depth', [18, 50])
@pytest.mark.parametrize('mode', ['fill', 'zero'])
def test_all_ones_mask_is_the_plain_resnet(depth, mode):
    from mmpretrain.models.backbones import ResNet
    torch.manual_seed(0)
    kwargs = dict(depth=depth, stem_channels=16, base_channels=16, out_indices=(0, 1, 2, 3))
    plain = ResNet(**kwargs)
    plain.init_weights()
    for m in plain.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.2)
            m.weight.data.normal_(1, 0.2)
    plain.eval()
    model = LayerMaskedResNet(mask_mode=mode, **kwargs).eval()
    model.load_state_dict(plain.state_dict(), strict=True)  # an mmpretrain checkpoint loads
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = plain(x)
        outs, masks = model(x, mask=torch.ones(64, 64), return_masks=True)
        no_mask = model(x)
    for r, o, n, m in zip(ref, outs, no_mask, masks):
        torch.testing.assert_close(o, r, atol=1e-6, rtol=0)
        assert torch.equal(n, r)
        assert bool((m == 1).all())


@pytest.mark.parametrize('mode', ['fill', 'zero', 'pconv'])
@pytest.mark.parametrize('depth', [18, 50])
def test_removed_pixels_never_reach_the_output(mode, depth):
    torch.manual_seed(0)
    model = LayerMaskedResNet(depth=depth, stem_channels=8, base_channels=8,
                              mask_mode=mode, masked_pooling=True).eval()
    x = torch.randn(1, 3, 64, 64)
    mask = torch.ones(64, 64)
    mask[10:40, 20:50] = 0
    y = x.clone()
    y[..., 10:40, 20:50] = torch.randn(1, 3, 30, 30) * 10
    with torch.no_grad():
        a, b = model(x, mask=mask)[0], model(y, mask=mask)[0]
        grey = model(x * mask)[0]
    assert torch.equal(a, b)
    assert not torch.allclose(a, grey, atol=1e-4)  # layer masking ≠ painting the hole 0


def test_neighbour_fill():
    x = torch.arange(25.).view(1, 1, 5, 5)
    mask = torch.ones(1, 1, 5, 5)
    mask[..., 2, 2] = 0
    filled = neighbour_fill(x, mask, iters=1)
    neighbours = x[..., 1:4, 1:4].sum() - x[..., 2, 2]
    assert torch.allclose(filled[..., 2, 2], neighbours / (8 + 1e-5))
    assert torch.equal(filled * mask, x * mask)
    mask = torch.zeros(1, 1, 5, 5)
    mask[..., 0, 0] = 1
    # two iterations reach Chebyshev distance 2 from the only valid pixel, not further
    reached = neighbour_fill(torch.ones(1, 2, 5, 5), mask, iters=2)
    assert bool((reached[..., :3, :3] > 0.99).all()) and bool((reached[..., 3:, :] == 0).all())


def test_errors_and_mask_forms():
    model = LayerMaskedResNet(depth=18, stem_channels=8, base_channels=8).eval()
    x = torch.randn(2, 3, 32, 32)
    with pytest.raises(ValueError, match='mode must be one of'):
        model(x, mask=torch.ones(32, 32), mask_mode='grey')
    with pytest.raises(ValueError, match='input grid'):
        model(x, mask=torch.ones(16, 16))
    with pytest.raises(KeyError, match='invalid depth'):
        LayerMaskedResNet(depth=20)
    with torch.no_grad():
        a = model(x, mask=torch.ones(32, 32))[0]
        b = model(x, mask=torch.ones(2, 32, 32, dtype=torch.bool))[0]
        c = model(x, mask=torch.ones(2, 1, 32, 32))[0]
    assert torch.equal(a, b) and torch.equal(a, c)
    assert mode_from_it([100, 5]) == 'fill' and mode_from_it([0]) == 'zero'
    assert mode_from_it(-1) == 'pconv'


def test_backward_with_mask_and_deep_stem():
    torch.manual_seed(0)
    model = LayerMaskedResNet(depth=50, stem_channels=16, base_channels=8, deep_stem=True,
                              avg_down=True, stage_blocks=(1, 1, 1, 1), masked_pooling=True)
    x = torch.randn(2, 3, 32, 32)
    mask = (torch.rand(2, 32, 32) > 0.3).float()
    model(x, mask=mask)[0].pow(2).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


def _toy_classifier_cfg(backbone_type='mmpretrain.ResNet', **extra):
    return dict(
        type='mmpretrain.ImageClassifier',
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor', num_classes=10,
                               mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                               to_rgb=True),
        backbone=dict(type=backbone_type, depth=18, stem_channels=8, base_channels=8,
                      out_indices=(3, ), **extra),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(type='mmpretrain.LinearClsHead', num_classes=10, in_channels=64))


def test_classifier_integration_and_conversion():
    torch.manual_seed(0)
    plain = MODELS.build(_toy_classifier_cfg()).eval()
    cfg = _toy_classifier_cfg('mmmask.LayerMaskedResNet', masked_pooling=True)
    cfg['neck'] = None
    wrapped = MODELS.build(cfg).eval()
    wrapped.load_state_dict(plain.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    mask = torch.ones(2, 32, 32)
    mask[:, :, 16:] = 0
    with torch.no_grad():
        ref = plain(x, mode='tensor')
        torch.testing.assert_close(wrapped(x, mode='tensor'), ref, atol=1e-6, rtol=0)
        with use_layer_mask(wrapped, mask, 'fill'):
            masked = wrapped(x, mode='tensor')
        assert wrapped.backbone._mask is None  # the context restores the module
        converted = to_layer_masked(copy.deepcopy(plain))
        assert converted.neck is None and converted.backbone.masked_pooling
        torch.testing.assert_close(converted(x, mode='tensor'), ref, atol=1e-6, rtol=0)
        with use_layer_mask(converted, mask):
            torch.testing.assert_close(converted(x, mode='tensor'), masked)
    assert not torch.allclose(masked, ref, atol=1e-4)
    with pytest.raises(TypeError, match='mmpretrain ResNet'):
        to_layer_masked(torch.nn.Conv2d(3, 3, 1))


def test_masking_predictor_strategies():
    torch.manual_seed(0)
    model = MODELS.build(_toy_classifier_cfg())
    pred = MaskingPredictor(model, batch_size=3)
    x = torch.randn(3, 32, 32)
    masks = torch.ones(5, 32, 32)
    masks[1:, :16] = 0
    full = {s: pred(x, masks, s) for s in ('grey', 'black', 'layer', 'layer_zero')}
    for s, p in full.items():
        assert p.shape == (5, 10) and torch.allclose(p.sum(1), torch.ones(5))
    torch.testing.assert_close(full['grey'][0], full['layer'][0], atol=1e-5, rtol=0)
    assert not torch.allclose(full['grey'][1], full['black'][1])
    assert not torch.allclose(full['grey'][1], full['layer'][1])
    with pytest.raises(ValueError, match='strategy'):
        pred(x, masks, 'blur')


def test_fill_input():
    x = torch.randn(2, 3, 4, 4)
    mask = torch.zeros(2, 4, 4)
    mask[:, :2] = 1
    mean, std = [10., 20., 30.], [2., 4., 5.]
    grey = fill_input(x, mask, 'grey')
    black = fill_input(x, mask, 'black', mean, std)
    assert torch.equal(grey[:, :, :2], x[:, :, :2]) and bool((grey[:, :, 2:] == 0).all())
    assert torch.allclose(black[0, :, 3, 3], torch.tensor([-5., -5., -6.]))
    assert bool((fill_input(x, mask, 0.5)[:, :, 2:] == 0.5).all())


def test_segments():
    seg = patch_segments(8, 12, 4)
    assert seg.shape == (8, 12) and int(seg.max()) == 5 and int(seg[5, 9]) == 5
    img = torch.zeros(3, 32, 32)
    img[:, :, 16:] = 5
    sp = superpixel_segments(img, n_segments=8)
    assert sp.shape == (32, 32) and 2 <= int(sp.max()) + 1 <= 16
    # no superpixel straddles the strong colour edge
    for k in sp.unique():
        cols = torch.nonzero(sp == k)[:, 1]
        assert bool((cols < 16).all()) or bool((cols >= 16).all())
    masks = segments_to_masks(seg, torch.tensor([[1, 0, 1, 1, 1, 1]]))
    assert masks.shape == (1, 8, 12) and float(masks.sum()) == 96 - 16


def test_lime_recovers_a_linear_model_and_deletion():
    true = torch.tensor([0.5, -0.2, 0.0, 0.3])
    lime = lime_attributions(lambda z: z @ true + 0.1, num_segments=4, num_samples=300,
                             ridge=1e-6)
    torch.testing.assert_close(lime['coef'], true, atol=1e-3, rtol=0)
    assert lime['r2'] > 0.999
    curve = deletion_curve(lambda z: z @ true.clamp(min=0), lime['coef'].argsort(descending=True),
                           4)
    assert torch.allclose(curve, torch.tensor([0.8, 0.3, 0.0, 0.0, 0.0]))
    nonlinear = lime_attributions(lambda z: z.prod(1), num_segments=4, num_samples=300)
    assert nonlinear['r2'] < 0.9


def test_bias_measures():
    clean = torch.eye(4).repeat(5, 1) * 0.9 + 0.025
    biased = torch.zeros(20, 4)
    biased[:, 2] = 1  # every masked image becomes class 2
    res = missingness_bias(clean, biased)
    assert res['flip_rate'] == 0.75 and res['top_class_share'] == 1.0
    assert res['class_drift'] > 0.5 and res['confidence_drop'] > 0
    same = missingness_bias(clean, clean)
    assert same['flip_rate'] == 0 and abs(same['class_drift']) < 1e-9
    labels = torch.arange(4).repeat(5)
    leak = mask_shape_leak(labels, clean, clean, biased)
    assert leak['acc_shaped'] == 1.0 and leak['acc_shapeless'] == 0.25 and leak['leak'] == 0.75
    mask = torch.ones(1, 8, 8)
    mask[0, 1:3, 2:4] = 0
    assert float(rolled_mask(mask)[0, 5:7, 6:8].sum()) == 0
    assert float((1 - box_mask(mask, margin=1)).sum()) == 16


def test_out_indices_and_multiscale_masks():
    model = LayerMaskedResNet(depth=18, stem_channels=8, base_channels=8,
                              out_indices=(0, 1, 2, 3)).eval()
    x = torch.randn(1, 3, 64, 96)
    mask = torch.ones(64, 96)
    mask[:, :48] = 0
    with torch.no_grad():
        outs, masks = model(x, mask=mask, return_masks=True)
        last = LayerMaskedResNet(depth=18, stem_channels=8, base_channels=8, out_indices=(-1, ))
        last.load_state_dict(model.state_dict())
        single = last.eval()(x, mask=mask)
    assert [tuple(o.shape[1:]) for o in outs] == [(8, 16, 24), (16, 8, 12), (32, 4, 6), (64, 2, 3)]
    assert [tuple(m.shape[1:]) for m in masks] == [(1, 16, 24), (1, 8, 12), (1, 4, 6), (1, 2, 3)]
    assert len(single) == 1 and torch.equal(single[0], outs[3])
    for o, m in zip(outs, masks):
        assert bool((o * (1 - m) == 0).all())  # features vanish where the mask is 0
    # the kept half grows by one conv receptive field per layer, never shrinks
    assert float(masks[0][..., 12:].min()) == 1 and float(masks[0][..., :6].max()) == 0


def test_classifier_reads_masks_from_data_samples_and_patch_removal():
    import numpy as np
    from mmpretrain.datasets.transforms import PackInputs
    from mmmask.evaluation.explanation.layer_masking import (LayerMaskedImageClassifier,
                                                             RandomPatchRemoval)
    torch.manual_seed(0)
    cfg = _toy_classifier_cfg()
    cfg['type'] = 'mmmask.LayerMaskedImageClassifier'
    model = MODELS.build(cfg).eval()
    assert isinstance(model, LayerMaskedImageClassifier) and model.neck is None
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    removal = RandomPatchRemoval(ratio=0.5, patch=8, seed=0)
    res = removal.transform(dict(img=img.copy(), img_path='a.png'))
    keep = res['layer_mask']
    assert keep.shape == (32, 32) and keep.mean() == 0.5 and np.array_equal(res['img'], img)
    again = removal.transform(dict(img=img.copy(), img_path='a.png'))['layer_mask']
    other = removal.transform(dict(img=img.copy(), img_path='b.png'))['layer_mask']
    assert np.array_equal(keep, again) and not np.array_equal(keep, other)
    grey = RandomPatchRemoval(ratio=0.5, patch=8, seed=0, fill=(1, 2, 3)).transform(
        dict(img=img.copy(), img_path='a.png'))['img']
    assert np.array_equal(grey[keep == 0], np.tile([1, 2, 3], (512, 1)))
    assert np.array_equal(grey[keep == 1], img[keep == 1])
    packed = PackInputs(algorithm_keys=['layer_mask'])(res)
    packed_full = PackInputs()(dict(img=img.copy()))
    data = model.data_preprocessor(dict(inputs=[packed['inputs'], packed_full['inputs']],
                                        data_samples=[packed['data_samples'],
                                                      packed_full['data_samples']]), False)
    with torch.no_grad():
        preds = model(data['inputs'], data['data_samples'], mode='predict')
        masks = torch.stack([torch.from_numpy(keep), torch.ones(32, 32)])
        ref = model(data['inputs'], mode='tensor', mask=masks).softmax(-1)
        plain = model(data['inputs'], mode='tensor').softmax(-1)
    got = torch.stack([p.pred_score for p in preds])
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(got[1], plain[1], atol=1e-6, rtol=0)
    assert not torch.allclose(got[0], plain[0], atol=1e-5)
