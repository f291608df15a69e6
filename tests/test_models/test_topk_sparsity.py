"""Top-K activation sparsity (Li et al. NeurIPS 2023, used by DiSRT arXiv 2506.00718): the op
against the official TopKLayer semantics (Crazy-Jack/nips2023_shape_vs_texture, topK.py) and its
insertion by config into upstream mmpretrain backbones."""
import copy
import math

import pytest
import torch

import mmmask.models  # noqa: F401
from mmmask.models.layers.topk_sparsity import (TopKSparsity, WithTopKSparsity,
                                                add_topk_sparsity, remove_topk_sparsity,
                                                topk_keep_count, topk_sparsify)
from mmmask.registry import MODELS


def distinct(*shape, seed=0):
    """Non-zero values with pairwise-distinct absolute values, random signs."""
    g = torch.Generator().manual_seed(seed)
    n = math.prod(shape)
    mags = (torch.randperm(n, generator=g).float() + 1) / n
    signs = torch.randint(0, 2, (n, ), generator=g).float() * 2 - 1
    return (mags * signs).reshape(shape)


def official_keep(k, hw):
    """``int(max(1, topk * h * w))`` of the official TopKLayer.sparse_hw."""
    return int(max(1, k * hw))


@pytest.mark.parametrize('hw', [(7, 7), (14, 14), (5, 3), (1, 1), (28, 28)])
@pytest.mark.parametrize('k', [0.05, 0.1, 0.2, 0.29, 0.5, 0.9])
def test_exact_nonzero_count_per_channel(hw, k):
    h, w = hw
    x = distinct(2, 5, h, w)
    for rounding, expected in (('floor', official_keep(k, h * w)),
                               ('ceil', max(1, math.ceil(k * h * w)))):
        y = topk_sparsify(x, k, rounding=rounding)
        counts = (y != 0).reshape(2, 5, -1).sum(-1)
        assert (counts == min(expected, h * w)).all(), (rounding, counts, expected)


def test_official_rounding_quirks():
    # int() truncation of the float product, as the official code does
    assert topk_keep_count(0.1, 49) == 4 and topk_keep_count(0.1, 49, 'ceil') == 5
    assert topk_keep_count(0.29, 100) == 28  # 0.29 * 100 = 28.999999999999996
    assert topk_keep_count(0.01, 49) == 1  # at least one position
    with pytest.raises(ValueError):
        topk_keep_count(0., 10)
    with pytest.raises(ValueError):
        topk_keep_count(0.1, 10, 'round')


def test_keeps_largest_magnitudes_with_sign():
    x = distinct(3, 4, 6, 6, seed=1)
    y = topk_sparsify(x, 0.25)
    keep = official_keep(0.25, 36)
    flat_x, flat_y = x.reshape(3, 4, -1), y.reshape(3, 4, -1)
    for n in range(3):
        for c in range(4):
            top = flat_x[n, c].abs().argsort(descending=True)[:keep]
            expected = torch.zeros(36)
            expected[top] = flat_x[n, c, top]  # signed values kept
            assert torch.equal(flat_y[n, c], expected)
    assert (y < 0).any()  # negative activations with large |x| survive


def test_ties_keep_exactly_k_positions():
    x = torch.ones(2, 3, 5, 5)
    y = topk_sparsify(x, 0.2)
    assert ((y != 0).reshape(2, 3, -1).sum(-1) == 5).all()


def test_identity_at_k_one_and_gradient_only_through_kept():
    x = distinct(1, 2, 4, 4).requires_grad_()
    assert topk_sparsify(x, 1.) is x
    y = topk_sparsify(x, 0.25)
    y.sum().backward()
    assert torch.equal(x.grad != 0, y != 0)


def test_token_and_channel_last_layouts():
    tokens = distinct(2, 1 + 16, 8)  # CLS + 4x4 patches, 8 channels
    y = TopKSparsity(0.25, num_prefix_tokens=1)(tokens)
    assert torch.equal(y[:, 0], tokens[:, 0])  # CLS untouched
    assert ((y[:, 1:] != 0).sum(1) == 4).all()  # per channel over the 16 patch tokens
    maps = distinct(2, 8, 4, 4)
    nhwc = topk_sparsify(maps.permute(0, 2, 3, 1), 0.25, layout='nhwc')
    assert torch.equal(nhwc.permute(0, 3, 1, 2), topk_sparsify(maps, 0.25))
    with pytest.raises(ValueError, match='maps or'):
        topk_sparsify(torch.randn(4, 5), 0.5)


def resnet(**kw):
    return MODELS.build(dict(type='mmpretrain.ResNet', depth=18, stem_channels=16,
                             base_channels=16, out_indices=(2, 3), **kw))


def test_hooks_on_mmpretrain_resnet_keep_keys_and_sparsify():
    torch.manual_seed(0)
    plain = resnet()
    plain.eval()  # (mmpretrain's ResNet.train() returns None)
    sparse = copy.deepcopy(plain)
    ops = add_topk_sparsity(sparse, ['layer3', 'layer4'], k=[0.25, 0.5])
    assert set(ops) == {'layer3', 'layer4'} and set(sparse.topk_sparsity) == {'layer3', 'layer4'}
    assert list(sparse.state_dict()) == list(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        dense3, dense4 = plain(x)
        out3, out4 = sparse(x)
    assert torch.equal(out3, topk_sparsify(dense3, 0.25))  # layer3 output (4x4) sparsified
    assert ((out3 != 0).reshape(2, 64, -1).sum(-1) <= 4).all()
    assert ((out4 != 0).reshape(2, 128, -1).sum(-1) <= 2).all()  # 2x2 map, k=0.5
    assert not torch.equal(out4, dense4)
    # deep copies keep the hooks; removing them restores the dense model
    with torch.no_grad():
        assert torch.equal(copy.deepcopy(sparse)(x)[1], out4)
    assert remove_topk_sparsity(sparse) == 2
    with torch.no_grad():
        assert torch.equal(sparse(x)[1], dense4)


def test_bad_module_name_names_candidates():
    with pytest.raises(KeyError, match='layer3'):
        add_topk_sparsity(resnet(), ['layer9'])
    with pytest.raises(ValueError, match='fractions'):
        add_topk_sparsity(resnet(), ['layer3', 'layer4'], k=[0.1])


def test_with_topk_sparsity_by_config_loads_upstream_checkpoints(tmp_path):
    torch.manual_seed(0)
    plain = resnet()
    ckpt = tmp_path / 'r18.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in plain.state_dict().items()}},
               str(ckpt))
    model = MODELS.build(dict(
        type='mmmask.WithTopKSparsity',
        backbone=dict(type='mmpretrain.ResNet', depth=18, stem_channels=16, base_channels=16),
        k=0.1, after=['layer3', 'layer4'], out_indices=(2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=str(ckpt), prefix='backbone.')))
    assert type(model) is type(plain)  # the upstream class, not a wrapper
    model.init_weights()
    for (k, a), (_, b) in zip(plain.state_dict().items(), model.state_dict().items()):
        assert torch.equal(a, b), k
    model.train()
    outs = model(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape[1:]) for o in outs] == [(64, 4, 4), (128, 2, 2)]
    sum(o.pow(2).mean() for o in outs).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_with_topk_sparsity_on_vit_spares_cls_token():
    torch.manual_seed(0)
    model = WithTopKSparsity(
        backbone=dict(type='mmpretrain.VisionTransformer',
                      arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                                feedforward_channels=64),
                      img_size=32, patch_size=8, out_type='raw'),
        k=0.25, after=['layers.0'])
    model.eval()
    seen = {}
    model.layers[1].register_forward_pre_hook(lambda m, a: seen.__setitem__('x', a[0]))
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    tokens = seen['x']  # the sparsified output of layers.0: (2, 1 + 16, 32)
    assert (tokens[:, 0] != 0).all()  # num_extra_tokens (CLS) taken from the backbone
    assert ((tokens[:, 1:] != 0).sum(1) == 4).all()


def test_image_classifier_with_topk_backbone_trains(mmpretrain_scope):
    model = MODELS.build(dict(
        type='mmpretrain.ImageClassifier',
        backbone=dict(type='mmmask.WithTopKSparsity',
                      backbone=dict(type='mmpretrain.ResNet', depth=18, stem_channels=16,
                                    base_channels=16),
                      k=0.2, after=['layer3', 'layer4']),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=4, in_channels=128,
                  loss=dict(type='CrossEntropyLoss'))))
    from mmpretrain.structures import DataSample
    samples = [DataSample().set_gt_label(i % 4) for i in range(4)]
    losses = model(torch.randn(4, 3, 64, 64), samples, mode='loss')
    losses['loss'].backward()
    assert torch.isfinite(losses['loss'])
