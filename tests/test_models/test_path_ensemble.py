"""Path-ensemble ViT (arXiv:2308.06548): exact re-parameterisation of mmpretrain's ViT, pruning that
changes only the output sum, EnsembleScale, and the long→short self-distillation classifier."""
import pytest
import torch
from mmpretrain.models import VisionTransformer

import mmmask.models  # noqa: F401
from mmmask.models.backbones.path_ensemble import (PathEnsembleClassifier, PathEnsembleViT,
                                                   path_names, path_self_distillation)
from mmmask.registry import MODELS

# mmpretrain classifiers built here resolve their default data preprocessor in the current scope
pytestmark = pytest.mark.usefixtures('mmpretrain_scope')

TINY = dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)


def _pair(**kwargs):
    torch.manual_seed(0)
    vit = VisionTransformer(arch=TINY, img_size=32, patch_size=8, **kwargs)
    vit.init_weights()
    model = PathEnsembleViT(arch=TINY, img_size=32, patch_size=8, **kwargs)
    missing, unexpected = model.load_state_dict(vit.state_dict(), strict=False)
    assert missing == ['ensemble_scale'] and not unexpected  # ViT checkpoints load unchanged
    vit.eval()
    model.eval()
    return vit, model


def test_path_names():
    assert path_names(2) == ['embed', 'attn.0', 'ffn.0', 'attn.1', 'ffn.1']


@pytest.mark.parametrize('out_type', ['cls_token', 'avg_featmap', 'featmap'])
def test_unpruned_ensemble_is_the_vit(out_type):
    vit, model = _pair(out_type=out_type, out_indices=(1, 2))
    x = torch.randn(2, 3, 32, 48)  # non-square grid, interpolated position embedding
    res = model.forward_paths(x, keep_terms=True)
    assert len(res['terms']) == 2 * 3 + 1
    torch.testing.assert_close(res['ensemble'], res['stream'], rtol=0, atol=1e-6)
    torch.testing.assert_close(sum(res['terms']), res['stream'], rtol=1e-5, atol=1e-5)
    for ours, theirs in zip(model(x), vit(x)):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_pruning_changes_only_the_output_sum():
    _, model = _pair()
    x = torch.randn(2, 3, 32, 32)
    full = model.forward_paths(x, keep_terms=True)
    model.set_pruned(['attn.1', 4, 'embed'])
    assert model.pruned == ['embed', 'attn.1', 'ffn.1']
    pruned = model.forward_paths(x, keep_terms=True)
    # the residual stream and every path output are unchanged (pruned paths still feed later ones)
    torch.testing.assert_close(pruned['stream'], full['stream'], rtol=0, atol=0)
    for a, b in zip(pruned['terms'], full['terms']):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # only the sum loses exactly those terms
    t = full['terms']
    torch.testing.assert_close(pruned['ensemble'], full['ensemble'] - t[0] - t[3] - t[4],
                               rtol=1e-5, atol=1e-5)
    assert not torch.allclose(model(x)[0], full['outs'][0])
    model.set_pruned([])
    torch.testing.assert_close(model(x)[0], full['outs'][0], rtol=0, atol=0)


def test_pruned_tail_is_not_computed():
    _, model = _pair()
    x = torch.randn(2, 3, 32, 32)
    full = model.forward_paths(x, keep_terms=True)
    calls = []
    model.layers[2].ffn.register_forward_hook(lambda *a: calls.append('ffn.2'))
    model.layers[2].attn.register_forward_hook(lambda *a: calls.append('attn.2'))
    model.set_pruned(['ffn.2'])
    assert model.last_needed_term() == 5 and model.active_layers() == 2.5
    res = model.forward_paths(x)
    assert calls == ['attn.2'] and res['stream'] is None
    t = full['terms']
    torch.testing.assert_close(res['ensemble'], full['ensemble'] - t[6], rtol=1e-5, atol=1e-5)
    calls.clear()
    model.set_pruned(['attn.2', 'ffn.2', 'ffn.1'])
    assert model.active_layers() == 1.5
    model(x)
    assert calls == []
    model.set_pruned([])
    model(x)
    assert calls == ['attn.2', 'ffn.2']


def test_ensemble_scale_reweights_terms_and_learns():
    _, model = _pair()
    with torch.no_grad():
        model.ensemble_scale.copy_(torch.arange(7.))
    x = torch.randn(2, 3, 32, 32)
    res = model.forward_paths(x, keep_terms=True)
    expected = sum(i * t for i, t in enumerate(res['terms']))
    torch.testing.assert_close(res['ensemble'], expected, rtol=1e-5, atol=1e-4)
    model.train()
    model(x)[0].sum().backward()
    assert model.ensemble_scale.grad.abs().sum() > 0
    channel = PathEnsembleViT(arch=TINY, img_size=32, patch_size=8, ensemble_scale='channel')
    assert channel.ensemble_scale.shape == (7, 32)
    fixed = PathEnsembleViT(arch=TINY, img_size=32, patch_size=8, ensemble_scale=None)
    assert 'ensemble_scale' not in dict(fixed.named_parameters())


def test_bias_provider_keeps_keys_and_exactness():
    """With a bias provider every attention is a BiasedSelfAttention (same qkv/proj keys); the
    accumulator is still the residual stream."""
    from mmmask.models.layers.biased_attention import BiasedSelfAttention
    vit, plain = _pair(with_cls_token=False, out_type='avg_featmap')
    torch.manual_seed(0)
    model = PathEnsembleViT(arch=TINY, img_size=32, patch_size=8, with_cls_token=False,
                            out_type='avg_featmap',
                            bias_provider=dict(type='mmmask.GaussianMixtureMask', num_heads=2,
                                               num_kernels=3))
    assert all(isinstance(layer.attn, BiasedSelfAttention) for layer in model.layers)
    missing, unexpected = model.load_state_dict(vit.state_dict(), strict=False)
    assert not unexpected
    assert all(k == 'ensemble_scale' or '.attn.bias_provider.' in k for k in missing)
    model.eval()
    x = torch.randn(2, 3, 32, 40)
    res = model.forward_paths(x)
    torch.testing.assert_close(res['ensemble'], res['stream'], rtol=0, atol=1e-6)
    assert not torch.allclose(model(x)[0], plain(x)[0])  # the GMM prior changes the attention


def test_hyena_mixers_as_a_path_ensemble():
    from mmmask.models.backbones.hyena_nd import HyenaND
    torch.manual_seed(0)
    model = PathEnsembleViT(arch=TINY, img_size=32, patch_size=8, with_cls_token=False,
                            out_type='featmap', hyena_cfg=dict(filter_hidden=8)).eval()
    assert all(isinstance(layer.attn, HyenaND) for layer in model.layers)
    res = model.forward_paths(torch.randn(2, 3, 32, 40))
    torch.testing.assert_close(res['ensemble'], res['stream'], rtol=0, atol=1e-6)
    assert res['outs'][0].shape == (2, 32, 4, 5)
    with pytest.raises(ValueError, match='with_cls_token'):
        PathEnsembleViT(arch=TINY, img_size=32, patch_size=8, hyena_cfg=dict())


def test_bad_paths():
    with pytest.raises(ValueError, match='unknown path'):
        PathEnsembleViT(arch=TINY, img_size=32, patch_size=8, prune_paths=['mlp.0'])
    with pytest.raises(ValueError, match='out of range'):
        PathEnsembleViT(arch=TINY, img_size=32, patch_size=8, prune_paths=[7])
    with pytest.raises(ValueError, match='ensemble_scale'):
        PathEnsembleViT(arch=TINY, img_size=32, patch_size=8, ensemble_scale='layer')


def test_short_paths_are_truncated_vits():
    """The partial ensemble after layer l is what the first l+1 layers of the ViT output."""
    vit, model = _pair()
    x = torch.randn(2, 3, 32, 32)
    short = model.forward_paths(x, short_layers=[0, 1])['short']
    vit_2 = VisionTransformer(arch=dict(TINY, num_layers=2), img_size=32, patch_size=8)
    vit_2.load_state_dict(vit.state_dict(), strict=False)
    vit_2.eval()
    torch.testing.assert_close(short[1], vit_2(x)[0], rtol=0, atol=1e-6)


def test_self_distillation_loss():
    torch.manual_seed(0)
    teacher = torch.randn(4, 10)
    assert path_self_distillation([teacher.clone()], teacher).abs() < 1e-6
    student = torch.randn(4, 10, requires_grad=True)
    loss = path_self_distillation([student], teacher, temperature=2.0)
    assert loss > 0
    loss.backward()
    assert student.grad.abs().sum() > 0


def _classifier(**kwargs):
    return MODELS.build(dict(
        type='mmmask.PathEnsembleClassifier',
        backbone=dict(type='mmmask.PathEnsembleViT', arch=TINY, img_size=32, patch_size=8),
        head=dict(type='mmpretrain.LinearClsHead', num_classes=5, in_channels=32), **kwargs))


def test_classifier_distills_long_to_short_paths():
    from mmpretrain.structures import DataSample
    torch.manual_seed(0)
    model = _classifier(distill_layers=[0, 1, -1], distill_weight=0.5, distill_temperature=2.)
    assert model.distill_layers == [0, 1]  # the last layer is the teacher
    x = torch.randn(4, 3, 32, 32)
    samples = [DataSample().set_gt_label(i % 5) for i in range(4)]
    losses = model.loss(x, samples)
    assert set(losses) == {'loss', 'loss_path_distill'} and losses['loss_path_distill'] > 0
    # the teacher is detached: the distillation gradient reaches the head only through students
    model.zero_grad()
    losses['loss_path_distill'].backward()
    assert model.backbone.layers[2].attn.qkv.weight.grad is None  # only the teacher uses layer 2
    assert model.backbone.layers[0].attn.qkv.weight.grad.abs().sum() > 0
    plain = _classifier()
    assert set(plain.loss(x, samples)) == {'loss'}
    with pytest.raises(TypeError, match='PathEnsembleViT'):
        MODELS.build(dict(type='mmmask.PathEnsembleClassifier',
                          backbone=dict(type='mmpretrain.VisionTransformer', arch=TINY,
                                        img_size=32, patch_size=8)))
