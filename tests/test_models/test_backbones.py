"""Every registered mmmask backbone (timm's test_models style): forward, backward, out_indices
shapes and strides, and an ``init_cfg=Pretrained`` round trip."""
import copy

import pytest
import torch

import mmmask.models  # noqa: F401
from mmmask.models.backbones import PPMA
from mmmask.registry import MODELS

#: Small instantiation kwargs per backbone; a new backbone must add an entry here.
SMALL = {
    'PPMA': dict(arch=dict(PPMA.arch_zoo['tiny'], depths=[1, 1, 1, 1], embed_dims=[16, 32, 64, 64],
                           num_heads=[2, 2, 4, 4])),
    'STDCNetS4': dict(base=16, layers=[1, 1, 1]),
    'MaskedViT': dict(arch=dict(embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64),
                      img_size=32, patch_size=8, out_indices=(1, 3), out_type='featmap'),
}
#: (channels per stage, stride per stage) of the small variants.
EXPECTED = {
    'PPMA': ([16, 32, 64, 64], [4, 8, 16, 32]),
    'STDCNetS4': ([16, 64, 128, 256], [4, 8, 16, 32]),
    'MaskedViT': ([32, 32], [8, 8]),
}
#: modules outside ``mmmask.models.backbones`` that register backbones
BACKBONE_MODULES = ('mmmask.models.backbones', 'mmmask.models.selfsup.masked_vit')


def registered_backbones():
    return sorted(name for name, cls in MODELS.module_dict.items()
                  if cls.__module__.startswith(BACKBONE_MODULES))


def test_every_backbone_has_small_kwargs():
    assert set(registered_backbones()) == set(SMALL)


@pytest.fixture(params=registered_backbones())
def backbone(request):
    torch.manual_seed(0)
    return request.param, MODELS.build(dict(type=f'mmmask.{request.param}',
                                            **copy.deepcopy(SMALL[request.param])))


def test_forward_shapes(backbone):
    name, model = backbone
    model.eval()
    channels, strides = EXPECTED[name]
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 96))
    assert len(outs) == len(channels)
    for out, c, s in zip(outs, channels, strides):
        assert out.shape == (1, c, 64 // s, 96 // s)
        assert torch.isfinite(out).all()


def test_backward_reaches_every_parameter(backbone):
    _, model = backbone
    model.train()
    outs = model(torch.randn(2, 3, 64, 64))
    sum(o.float().pow(2).mean() for o in outs).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing


@pytest.mark.parametrize('index', [0, -1])
def test_out_indices(backbone, index):
    name, model = backbone
    kwargs = dict(copy.deepcopy(SMALL[name]), out_indices=(index, ))
    single = MODELS.build(dict(type=f'mmmask.{name}', **kwargs)).eval()
    with torch.no_grad():
        outs = single(torch.randn(1, 3, 64, 64))
    assert len(outs) == 1 and outs[0].shape[1] == EXPECTED[name][0][index]


def test_init_cfg_pretrained_round_trip(backbone, tmp_path):
    name, model = backbone
    ckpt = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in model.state_dict().items()},
                'meta': {}}, str(ckpt))
    kwargs = dict(copy.deepcopy(SMALL[name]),
                  init_cfg=dict(type='Pretrained', checkpoint=str(ckpt), prefix='backbone.'))
    torch.manual_seed(1)
    loaded = MODELS.build(dict(type=f'mmmask.{name}', **kwargs))
    loaded.init_weights()
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
