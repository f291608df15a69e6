"""DAFormerHead and DLV2Head (mmmask/models/heads/daformer_head.py): output shapes, DAFormer's
module layout (names/shapes derived from lhoyer/DAFormer's daformer_head.py / dlv2_head.py /
aspp_head.py / sep_aspp_head.py for a small config), DeepLabV2's sum of atrous branches and its
init, and the base model configs."""
import copy
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from conftest import REPO

import mmmask  # noqa: F401
from mmmask.models.heads import DAFormerHead, DLV2Head
from mmmask.models.heads.daformer_head import TokenLinearEmbed
from mmmask.registry import MODELS

B0 = [32, 64, 160, 256]
BN = dict(type='BN', requires_grad=True)


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmseg')  # the heads build mmseg losses by unprefixed names


def daformer_cfg(embed=16, channels=24, **fusion):
    fusion_cfg = dict(type='aspp', sep=True, dilations=(1, 6, 12, 18), pool=False,
                      act_cfg=dict(type='ReLU'), norm_cfg=BN)
    fusion_cfg.update(fusion)
    return dict(
        type='mmmask.DAFormerHead', in_channels=B0, in_index=[0, 1, 2, 3], channels=channels,
        dropout_ratio=0.1, num_classes=19, norm_cfg=BN, align_corners=False,
        decoder_params=dict(
            embed_dims=embed,
            embed_cfg=dict(type='mlp', act_cfg=None, norm_cfg=None),
            embed_neck_cfg=dict(type='mlp', act_cfg=None, norm_cfg=None),
            fusion_cfg=fusion_cfg))


def feats(n=2, size=32):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(n, c, size // 2**i, size // 2**i, generator=g) for i, c in enumerate(B0)]


def test_daformer_head_shapes_and_layout():
    head = MODELS.build(daformer_cfg())
    head.init_weights()
    assert isinstance(head, DAFormerHead)
    out = head(feats())
    assert out.shape == (2, 19, 32, 32)  # the resolution of the first (1/4) level
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    e, c = 16, 24
    expected = {
        'embed_layers.0.proj.weight': (e, 32), 'embed_layers.3.proj.weight': (e, 256),
        'embed_layers.3.proj.bias': (e,),
        # rate 1: plain 1x1 ConvModule; rates > 1: depthwise 3x3 (+BN+ReLU) then pointwise 1x1
        'fuse_layer.aspp_modules.0.conv.weight': (c, 4 * e, 1, 1),
        'fuse_layer.aspp_modules.0.bn.weight': (c,),
        'fuse_layer.aspp_modules.1.depthwise_conv.conv.weight': (4 * e, 1, 3, 3),
        'fuse_layer.aspp_modules.1.depthwise_conv.bn.weight': (4 * e,),
        'fuse_layer.aspp_modules.3.pointwise_conv.conv.weight': (c, 4 * e, 1, 1),
        'fuse_layer.bottleneck.conv.weight': (c, 4 * c, 3, 3),
        'fuse_layer.bottleneck.bn.bias': (c,),
        'conv_seg.weight': (19, c, 1, 1), 'conv_seg.bias': (19,),
    }
    for k, s in expected.items():
        assert shapes[k] == s, k
    prefixes = {k.split('.')[0] + '.' + k.split('.')[1] for k in shapes}
    assert prefixes == {'embed_layers.0', 'embed_layers.1', 'embed_layers.2', 'embed_layers.3',
                        'fuse_layer.aspp_modules', 'fuse_layer.bottleneck', 'conv_seg.weight',
                        'conv_seg.bias'}
    assert 'fuse_layer.image_pool' not in str(list(shapes))  # pool=False
    assert not any(k.startswith('fuse_layer.aspp_modules.0.conv.bias') for k in shapes)  # BN
    dw = head.fuse_layer.aspp_modules[2].depthwise_conv.conv
    assert dw.dilation == (12, 12) and dw.padding == (12, 12) and dw.groups == 4 * e
    assert head.dropout.p == 0.1


def test_daformer_head_options_and_loss():
    head = MODELS.build(daformer_cfg(pool=True, sep=False))
    assert head.fuse_layer.image_pool is not None
    assert head.fuse_layer.bottleneck.conv.in_channels == 5 * 24
    assert head.fuse_layer.aspp_modules[1].conv.kernel_size == (3, 3)
    logits = head(feats())
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=torch.randint(0, 19, (1, 64, 64)))
    sample.set_metainfo(dict(img_shape=(64, 64)))
    losses = head.loss_by_feat(logits, [sample, copy.deepcopy(sample)])
    losses['loss_ce'].backward()
    assert head.embed_layers['0'].proj.weight.grad.abs().sum() > 0
    # the fused features are reachable on their own (e.g. for a decoder pass on other features)
    assert head.fuse_features(feats()).shape == (2, 24, 32, 32)


def test_token_linear_embed_is_a_1x1_conv():
    emb = TokenLinearEmbed(8, 5)
    x = torch.randn(2, 8, 3, 4)
    ref = F.conv2d(x, emb.proj.weight[:, :, None, None], emb.proj.bias)
    torch.testing.assert_close(emb(x), ref)


def test_dlv2_head_sums_atrous_branches():
    head = MODELS.build(dict(type='mmmask.DLV2Head', in_channels=16, in_index=3, num_classes=7))
    head.init_weights()
    assert isinstance(head, DLV2Head) and not hasattr(head, 'conv_seg')
    assert head.dropout is None
    convs = [m.conv for m in head.aspp_modules]
    assert [c.dilation[0] for c in convs] == [6, 12, 18, 24]
    assert all(not hasattr(m, 'bn') or m.bn is None for m in head.aspp_modules)
    assert all(m.activate is None if hasattr(m, 'activate') else True for m in head.aspp_modules)
    w = torch.cat([c.weight.flatten() for c in convs])
    assert abs(w.std().item() - 0.01) < 1e-3 and abs(w.mean().item()) < 1e-3
    assert all(c.bias is not None and c.bias.abs().max() == 0 for c in convs)
    x = torch.randn(1, 16, 9, 11)
    ref = sum(F.conv2d(x, c.weight, c.bias, padding=d, dilation=d)
              for c, d in zip(convs, (6, 12, 18, 24)))
    out = head([None, None, None, x])
    assert out.shape == (1, 7, 9, 11)
    torch.testing.assert_close(out, ref)
    for key in ('channels', 'dropout_ratio', 'norm_cfg'):
        with pytest.raises(AssertionError):
            DLV2Head(in_channels=16, num_classes=7, **{key: None})


def _tiny(cfg_path, **backbone):
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'models', cfg_path))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg['pretrained'] = None
    model_cfg['backbone'].pop('init_cfg', None)
    model_cfg['backbone'].update(backbone)
    return model_cfg


def test_base_model_configs_build():
    # DAFormer: the config's head on a 1-block-per-stage MiT with B5 widths.
    model = MODELS.build(_tiny('daformer_sepaspp_mitb5.py', num_layers=[1, 1, 1, 1]))
    head = model.decode_head
    assert isinstance(head, DAFormerHead)
    assert head.embed_layers['3'].proj.weight.shape == (256, 512)
    assert head.fuse_layer.bottleneck.conv.weight.shape == (256, 1024, 3, 3)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64), mode='tensor').shape == (1, 19, 16, 16)
    # DeepLabV2: the config's head (rates 6, 12, 18, 24, and 6, 12 for "red") on a ResNet-18.
    for path, rates in (('deeplabv2_r101.py', 4), ('deeplabv2red_r101.py', 2)):
        cfg = _tiny(path, depth=18)
        cfg['decode_head']['in_channels'] = 512
        model = MODELS.build(cfg)
        model.init_weights()
        assert len(model.decode_head.aspp_modules) == rates
        assert model.backbone.layer4[1].conv1.dilation == (4, 4)  # output stride 8
        model.eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, 64, 64), mode='tensor').shape == (1, 19, 8, 8)
