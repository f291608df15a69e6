"""Every registered mmmask backbone (timm's test_models style): forward, backward, out_indices
shapes and strides, and an ``init_cfg=Pretrained`` round trip."""
import copy

import pytest
import torch

import mmmask.models  # noqa: F401
from mmmask.registry import MODELS

from backbone_cases import CASES  # tests/test_models/backbone_cases/, one file per method

#: modules outside ``mmmask.models.backbones`` that register backbones
BACKBONE_MODULES = ('mmmask.models.backbones', 'mmmask.models.selfsup.masked_vit')


def is_backbone(cls) -> bool:
    """Registered in a backbone module, and not a whole model (classifier) or an attention-bias
    provider that lives next to its backbone. (Factories such as ``WithAttentionBias`` count.)"""
    from mmengine.model import BaseModel
    if not cls.__module__.startswith(BACKBONE_MODULES):
        return False
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return False
    return not getattr(cls, 'is_bias_provider', False)


def registered_backbones():
    return sorted(name for name, cls in MODELS.module_dict.items() if is_backbone(cls))


def test_every_backbone_has_a_case():
    """A new backbone must add a small case in tests/test_models/backbone_cases/."""
    assert set(registered_backbones()) == set(CASES)


def build(name: str, **overrides):
    return MODELS.build(dict(copy.deepcopy(CASES[name]['kwargs']), type=f'mmmask.{name}',
                             **overrides))


@pytest.fixture(params=registered_backbones())
def backbone(request):
    torch.manual_seed(0)
    return request.param, build(request.param)


def test_forward_shapes(backbone):
    name, model = backbone
    model.eval()
    case = CASES[name]
    h, w = case.get('input_size', (64, 96))
    with torch.no_grad():
        outs = model(torch.randn(1, 3, h, w))
    assert isinstance(outs, tuple), 'backbones return a tuple of outputs'
    assert [tuple(o.shape[1:]) for o in outs] == [tuple(s) for s in case['out_shapes']]
    for out in outs:
        assert out.shape[0] == 1 and torch.isfinite(out).all()


def test_backward_reaches_every_parameter(backbone):
    name, model = backbone
    model.train()
    case = CASES[name]
    h, w = case.get('backward_input_size', case.get('input_size', (64, 64)))
    outs = model(torch.randn(2, 3, h, w))
    sum(o.float().pow(2).mean() for o in outs).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing


@pytest.mark.parametrize('index', [0, -1])
def test_out_indices(backbone, index):
    name, _ = backbone
    case = CASES[name]
    if not case.get('out_indices', True):
        pytest.skip(f'{name} has no out_indices')
    single = build(name, out_indices=(index, ))
    single.eval()  # (mmpretrain-derived backbones return None from train())
    h, w = case.get('input_size', (64, 96))
    with torch.no_grad():
        outs = single(torch.randn(1, 3, h, w))
    assert len(outs) == 1 and outs[0].shape[1] == case['out_shapes'][index][0]


def test_init_cfg_pretrained_round_trip(backbone, tmp_path):
    name, model = backbone
    ckpt = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in model.state_dict().items()},
                'meta': {}}, str(ckpt))
    torch.manual_seed(1)
    loaded = build(name, init_cfg=dict(type='Pretrained', checkpoint=str(ckpt),
                                       prefix='backbone.'))
    loaded.init_weights()
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
