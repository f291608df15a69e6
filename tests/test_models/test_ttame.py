"""T-TAME (IEEE Access 2024): parity with the official IDT-ITI/T-TAME code (fixtures in
tests/data/parity/ttame/, see README there) and unit tests of TAMEClassifier on mmpretrain models.
"""
import json
import os.path as osp

import pytest
import torch
import torch.nn as nn

from mmmask.evaluation.explanation.ttame import (ExplanationADIC, average_drop,
                                                  increase_in_confidence, localisation_scores)
from mmmask.models.classifiers.ttame import (TAMEAttention, TAMEClassifier, min_max_normalize,
                                             official_ttame_to_mmmask, quantile_masked_inputs,
                                             tame_loss)

# mmpretrain classifiers built here resolve their default data preprocessor in the current scope
pytestmark = pytest.mark.usefixtures('mmpretrain_scope')

DATA = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'data', 'parity', 'ttame')
TOL = dict(atol=1e-5, rtol=1e-5)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _load(name):
    return torch.load(osp.join(DATA, name), map_location='cpu', weights_only=False)


@pytest.mark.parametrize('name', ['tame_attention_cnn.pt', 'ttame_attention_cap56_nonsquare.pt'])
def test_attention_module_parity(name):
    fx = _load(name)
    kw = fx['meta']['ctor_kwargs']
    att = TAMEAttention.from_feature_shapes(kw['ft_size'], kw['num_classes'])
    att.load_state_dict(fx['state_dict'], strict=True)
    feats = fx['inputs']['features']
    for mode in ('eval', 'train'):
        att.train(mode == 'train')
        a, c = att([f.clone() for f in feats])
        torch.testing.assert_close(c, fx['outputs'][mode]['c'], **TOL)
        torch.testing.assert_close(a, fx['outputs'][mode]['a'], **TOL)
    if 'cap56' in name:
        assert att.size == 56 and a.shape[-2:] == (56, 56)


@pytest.mark.parametrize('name', ['keys_tame_resnet50.json', 'keys_tame_vgg16.json',
                                  'keys_ttame_vit_b_16.json'])
def test_official_keys_map(name):
    """The paper's three attention modules: same keys (after the map) and shapes, 1000 classes."""
    with open(osp.join(DATA, name)) as f:
        spec = json.load(f)
    shapes = spec['meta']['ft_size']
    if len(shapes[0]) == 3:  # ViT tokens -> [C, 14, 14] maps (official factory)
        shapes = [[s[0], s[2], 14, 14] for s in shapes]
    att = TAMEAttention.from_feature_shapes(shapes, 1000)
    ours = {'attention.' + k: tuple(v.shape) for k, v in att.state_dict().items()}
    fake = {k: torch.zeros(v['shape']) for k, v in spec['keys'].items()}
    mapped = {k: tuple(v.shape) for k, v in official_ttame_to_mmmask(fake).items()}
    assert mapped == ours
    assert sum(p.numel() for p in att.parameters()) == spec['num_parameters_unique']


# ---------------------------------------------------------------- frozen bodies of the fixtures
class TinyCNN(nn.Module):
    """The fixtures' stand-in for ResNet-50 (README: stem/layer2/3/4 = Conv+BN+ReLU, fc)."""

    def __init__(self, widths=(8, 8, 16, 32), num_classes=10):
        super().__init__()

        def block(cin, cout, k, s, p):
            return nn.Sequential(nn.Conv2d(cin, cout, k, s, p), nn.BatchNorm2d(cout), nn.ReLU())

        self.stem = block(3, widths[0], 7, 4, 3)
        self.layer2 = block(widths[0], widths[1], 3, 2, 1)
        self.layer3 = block(widths[1], widths[2], 3, 2, 1)
        self.layer4 = block(widths[2], widths[3], 3, 2, 1)
        self.fc = nn.Linear(widths[3], num_classes)

    def forward(self, x):
        for m in (self.stem, self.layer2, self.layer3, self.layer4):
            x = m(x)
        return self.fc(x.mean(dim=(2, 3)))


class _EncoderBlock(nn.Module):

    def __init__(self, heads, dim, mlp_dim):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(0.0),
                                 nn.Linear(mlp_dim, dim), nn.Dropout(0.0))

    def forward(self, inp):
        x = self.ln_1(inp)
        x, _ = self.self_attention(x, x, x, need_weights=False)
        x = x + inp
        return x + self.mlp(self.ln_2(x))


class _Encoder(nn.Module):

    def __init__(self, seq_len, layers, heads, dim, mlp_dim):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.zeros(1, seq_len, dim))
        self.layers = nn.Sequential()
        for i in range(layers):
            self.layers.add_module(f'encoder_layer_{i}', _EncoderBlock(heads, dim, mlp_dim))
        self.ln = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x):
        return self.ln(self.layers(x + self.pos_embedding))


class TinyTorchvisionViT(nn.Module):
    """torchvision ``VisionTransformer`` re-written in plain torch (same keys and maths)."""

    def __init__(self, image_size=224, patch_size=16, num_layers=3, num_heads=2, hidden_dim=16,
                 mlp_dim=32, num_classes=10):
        super().__init__()
        self.patch_size = patch_size
        self.conv_proj = nn.Conv2d(3, hidden_dim, patch_size, patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, hidden_dim))
        self.encoder = _Encoder((image_size // patch_size)**2 + 1, num_layers, num_heads,
                                hidden_dim, mlp_dim)
        self.heads = nn.Sequential()
        self.heads.add_module('head', nn.Linear(hidden_dim, num_classes))

    def forward(self, x):
        x = self.conv_proj(x).flatten(2).permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.heads(self.encoder(x)[:, 0])


def _build_generic(fx):
    kw = fx['meta']['ctor_kwargs']
    if kw['name'] == 'vit_b_16':
        body = TinyTorchvisionViT(**kw['body']['kwargs'])
        layers = [n[:-len('.ln')] + '.ln_1' for n in kw['feature_layers']]  # FX 'ln' = ln_1
    else:
        body = TinyCNN(**kw['body']['kwargs'])
        layers = kw['feature_layers']
    extra = {}
    if kw['train_method'] == 'raw_normalize':
        extra = dict(mean=IMAGENET_MEAN, std=IMAGENET_STD)
    model = TAMEClassifier(body, layers, version=kw['attention_version'],
                           num_classes=kw['num_classes'], input_size=(224, 224),
                           train_method=kw['train_method'], masking=kw['masking'],
                           mask_size=(224, 224), body_train_mode=True, **extra)
    sd = fx['state_dict']
    body_sd = {k[len('body.'):]: v for k, v in sd.items() if k.startswith('body.')}
    model.classifier.load_state_dict(body_sd, strict=True)
    missing, unexpected = model.load_state_dict(official_ttame_to_mmmask(sd), strict=False)
    assert not unexpected and all(k.startswith('classifier.') for k in missing)
    return model


@pytest.mark.parametrize('name', ['tame_generic_cnn.pt', 'tame_generic_vit.pt',
                                  'ttame_generic_vit.pt'])
def test_generic_composite_parity(name):
    """Explanation maps, predicted labels, masked re-run and the loss terms, eval and train."""
    fx = _load(name)
    model = _build_generic(fx)
    img = fx['inputs']['img']
    if fx['meta']['ctor_kwargs']['train_method'] == 'raw_normalize':  # Generic normalises itself
        inputs = model.from_raw(img)
    else:
        inputs = img
    for mode in ('eval', 'train'):
        ref = fx['outputs'][mode]
        model.train(mode == 'train')
        out = model.explain(inputs)
        assert torch.equal(out['labels'], ref['labels'])
        torch.testing.assert_close(out['c'], ref['c'], **TOL)
        torch.testing.assert_close(out['a'], ref['a'], **TOL)
        masks = model.loss_masks(out['a'], out['labels'])
        torch.testing.assert_close(masks, ref['masks_get_a'], **TOL)
        logits = model.masked_logits(inputs, out['a'], out['labels']) if mode == 'train' \
            else out['logits']
        torch.testing.assert_close(logits, ref['logits'], **TOL)
        losses = tame_loss(logits, out['labels'], masks)
        for ours, theirs in (('loss_ce', 'cross_entropy'), ('loss_area', 'area'),
                             ('loss_smooth', 'variation')):
            torch.testing.assert_close(losses[ours], ref['loss'][theirs], **TOL)
        torch.testing.assert_close(sum(losses.values()), ref['loss']['total'], **TOL)


def test_generic_loss_mode_matches_fixture():
    """``forward(mode='loss')`` (what mmengine's train_step runs) gives the official train loss."""
    fx = _load('ttame_generic_vit.pt')
    model = _build_generic(fx).train()
    losses = model(fx['inputs']['img'], mode='loss')
    total = losses['loss_ce'] + losses['loss_area'] + losses['loss_smooth']
    torch.testing.assert_close(total, fx['outputs']['train']['loss']['total'], **TOL)


# ---------------------------------------------------------------- mmpretrain classifiers
def _resnet_cfg():
    return dict(type='mmpretrain.ImageClassifier',
                data_preprocessor=dict(num_classes=10, mean=[127.5] * 3, std=[64.] * 3,
                                       to_rgb=True),
                backbone=dict(type='mmpretrain.ResNet', depth=18, stem_channels=8,
                              base_channels=8, out_indices=(3, )),
                neck=dict(type='mmpretrain.GlobalAveragePooling'),
                head=dict(type='mmpretrain.LinearClsHead', num_classes=10, in_channels=64))


def _vit_cfg():
    return dict(type='mmpretrain.ImageClassifier',
                backbone=dict(type='mmpretrain.VisionTransformer',
                              arch=dict(embed_dims=32, num_layers=3, num_heads=2,
                                        feedforward_channels=64),
                              img_size=32, patch_size=8, out_type='cls_token'),
                head=dict(type='mmpretrain.VisionTransformerClsHead', num_classes=7,
                          in_channels=32))


def _train_two_steps(model, size):
    from mmengine.optim import OptimWrapper
    from mmpretrain.structures import DataSample
    torch.manual_seed(0)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = dict(inputs=[torch.randint(0, 255, (3, size, size), dtype=torch.uint8)
                        for _ in range(4)],
                data_samples=[DataSample().set_gt_label(0) for _ in range(4)])
    model.train()
    for _ in range(2):
        log = model.train_step(data, optim)
        assert torch.isfinite(log['loss'])
    after = model.state_dict()
    for k, v in before.items():
        if k.startswith('classifier.'):
            assert torch.equal(v, after[k]), f'frozen {k} changed'
    assert any(not torch.equal(before[k], after[k]) for k in before
               if k.startswith('attention.') and k.endswith('weight'))
    assert all(p.grad is None for p in model.classifier.parameters())
    return data


@pytest.mark.parametrize('kind', ['resnet', 'vit'])
def test_tame_classifier_on_mmpretrain(kind):
    if kind == 'resnet':
        model = TAMEClassifier(_resnet_cfg(), ['backbone.layer2', 'backbone.layer3',
                                               'backbone.layer4'], input_size=(64, 64),
                               train_method='raw_normalize', drop_fractions=[0.0, 0.5, 0.85])
        size, k, s = 64, 10, 8
    else:
        model = TAMEClassifier(_vit_cfg(), [f'backbone.layers.{i}.ln1' for i in range(3)],
                               input_size=(32, 32), drop_fractions=[0.0, 0.5, 0.85])
        size, k, s = 32, 7, 4
    assert model.attention.fuser.out_channels == k and model.num_classes == k
    data = _train_two_steps(model, size)
    model.eval()
    preds = model.test_step(data)
    for p in preds:
        assert p.explanation.shape == (s, s)
        assert 0 <= p.explanation.min() and p.explanation.max() <= 1
        assert p.masked_scores.shape == (3, )
    logits, a, c = model(model.data_preprocessor(data)['inputs'], mode='tensor')
    assert a.shape == (4, k, s, s) and logits.shape == (4, k)
    metric = ExplanationADIC()
    metric.process(data, [p.to_dict() for p in preds])
    res = metric.compute_metrics(metric.results)
    assert set(res) == {'AD@100', 'IC@100', 'AD@50', 'IC@50', 'AD@15', 'IC@15'}


def test_bad_config_errors():
    with pytest.raises(ValueError, match='not a submodule'):
        TAMEClassifier(_resnet_cfg(), ['backbone.layer9'], input_size=(64, 64))
    with pytest.raises(ValueError, match='version'):
        TAMEClassifier(_resnet_cfg(), ['backbone.layer4'], version='X')


def test_frozen_classifier_keeps_eval_mode():
    model = TAMEClassifier(_resnet_cfg(), ['backbone.layer3', 'backbone.layer4'],
                           input_size=(64, 64)).train()
    assert model.attention.training and not model.classifier.training
    assert model.attention.size == 4


# ---------------------------------------------------------------- metrics
def test_ad_ic_definitions():
    y = torch.tensor([0.8, 0.5, 0.4, 0.0])
    o = torch.tensor([0.4, 0.6, 0.4, 0.0])
    # drops: 0.5, 0 (increase), 0, nan->0 ; mean*100 = 12.5
    assert float(average_drop(y, o)) == pytest.approx(12.5)
    assert float(increase_in_confidence(y, o)) == pytest.approx(25.0)


def test_quantile_masking_keeps_fraction():
    maps = min_max_normalize(torch.rand(2, 1, 8, 8))
    raw = torch.ones(2, 3, 32, 32)
    full, half, few = quantile_masked_inputs(raw, maps, [0.0, 0.5, 0.85])
    assert (full > 0).float().mean() > 0.95  # soft map: everything but the minimum survives
    assert (half > 0).float().mean() == pytest.approx(0.5, abs=0.02)
    assert (few > 0).float().mean() == pytest.approx(0.15, abs=0.02)


def test_localisation_scores():
    masks = torch.zeros(1, 16, 16, dtype=torch.bool)
    masks[:, 4:8, 4:8] = True
    good = masks.float() + 0.1
    assert localisation_scores(good, masks)['inside_outside_ratio'] > 5
    assert localisation_scores(good, masks)['pointing'] == 1
    flat = torch.rand(1, 16, 16)
    assert localisation_scores(flat, masks)['inside_outside_ratio'] < 3
