"""Hallucinator (Wu et al., ICCV 2023): parity with the official generator and MoCo forward
(fixtures in tests/data/parity/hallucinator, README there), exact-formula tests of the SimCLR and
SimSiam variants against the official losses, the converter and the error messages."""
import json
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

import mmmask.models  # noqa: F401  (registers everything)
from conftest import REPO
from mmmask.models.converters import ConversionError
from mmmask.models.converters.hallucinator import convert_hallucinator_moco
from mmmask.models.selfsup.hallucinator import (HallucinatorGenerator, HallucinatorMoCo,
                                                HallucinatorSimCLR, HallucinatorSimSiam)
from mmmask.registry import MODELS


@pytest.fixture(autouse=True)
def _mmpretrain_scope():
    """The configs here name mmpretrain modules unprefixed (as mmpretrain's own configs do):
    build them in the mmpretrain scope, whatever scope an earlier test left as default."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield

DATA = osp.join(REPO, 'tests', 'data', 'parity', 'hallucinator')
TOL = dict(atol=1e-5, rtol=1e-5)


def _load(name):
    return torch.load(osp.join(DATA, name), map_location='cpu', weights_only=False)


@MODELS.register_module(name='_HallucParityStem', force=True)
class _ParityStem(BaseModule):
    """The fixture's TinyEncoder trunk (conv1 3x3 no bias, bn1, relu) as an mmpretrain-style
    backbone returning a 1-tuple; its ``avgpool`` is the MoCoV2Neck's (``with_avg_pool``)."""

    def __init__(self, width=16, padding=1):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=padding, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return (self.relu(self.bn1(self.conv1(x))), )


def _tiny_moco(queue_len=32, momentum=0.01, **kw):
    return MODELS.build(dict(
        type='mmmask.HallucinatorMoCo',
        backbone=dict(type='mmmask._HallucParityStem'),
        neck=dict(type='mmpretrain.MoCoV2Neck', in_channels=16, hid_channels=16,
                  out_channels=128, with_avg_pool=True),
        head=dict(type='mmpretrain.ContrastiveHead',
                  loss=dict(type='mmpretrain.CrossEntropyLoss'), temperature=0.2),
        queue_len=queue_len, feat_dim=128, momentum=momentum, **kw))


def test_generator_parity():
    fx = _load('halluc_generator.pt')
    sd = fx['state_dict']
    gen = HallucinatorGenerator(feat_dim=128)
    converted = convert_hallucinator_moco({
        'encoder_q.conv1.weight': torch.zeros(1), 'queue': torch.zeros(1),
        **{f'generator.{k}': v for k, v in sd.items()}})
    gen.load_state_dict({k[len('hallucinator.'):]: v for k, v in converted.items()
                         if k.startswith('hallucinator.')})
    inp = fx['inputs']
    out = gen(inp['q'], inp['k'], inp['ratio'].item())
    torch.testing.assert_close(out, fx['outputs']['out'], **TOL)
    # rows 0..N-1 are the queries themselves, bit for bit
    assert torch.equal(out[:4], inp['q'])


def test_moco_forward_parity(monkeypatch):
    fx = _load('halluc_moco_tiny.pt')
    inp, ref = fx['inputs'], fx['outputs']
    model = _tiny_moco()
    model.load_state_dict(convert_hallucinator_moco(fx['state_dict']), strict=True)
    model.train()
    ratio = inp['ratio'].item()
    model.hallucinator.ratio_sampler = lambda: ratio
    monkeypatch.setattr(torch, 'randperm', lambda n, **kw: inp['idx_shuffle'].clone())

    seen = {}
    head_loss = model.head.loss

    def spy_head(pos, neg):
        seen['logits'] = torch.cat((pos, neg), 1).detach() / model.head.temperature
        return head_loss(pos, neg)

    model.head.loss = spy_head
    model.hallucinator.register_forward_hook(
        lambda m, args, out: seen.update(q=args[0].detach(), k=args[1].detach(),
                                         g=out.detach()))
    losses = model.loss([inp['im_q'], inp['im_k']])
    losses['loss'].backward()

    torch.testing.assert_close(seen['q'], ref['q_projection'], **TOL)
    torch.testing.assert_close(seen['k'], ref['k_normalised'], **TOL)
    torch.testing.assert_close(seen['g'], ref['generator_out'], **TOL)
    torch.testing.assert_close(seen['logits'], ref['logits'], **TOL)
    torch.testing.assert_close(losses['loss'].detach(), ref['loss'], **TOL)
    torch.testing.assert_close(model.queue, ref['queue_after'], **TOL)
    assert torch.equal(model.queue_ptr, ref['queue_ptr_after'])  # 16 + 2N
    ek = model.encoder_k.module.state_dict()
    names = {'conv1.weight': '0.conv1.weight', 'fc.0.weight': '1.mlp.0.weight',
             'fc.0.bias': '1.mlp.0.bias', 'fc.2.weight': '1.mlp.2.weight',
             'fc.2.bias': '1.mlp.2.bias'}
    for k, v in ref['encoder_k_after'].items():
        ours = ek[names.get(k, '0.' + k)]
        torch.testing.assert_close(ours, v, **TOL, msg=lambda m, k=k: f'encoder_k {k}: {m}')
    torch.testing.assert_close(model.hallucinator.mlp[0].weight.grad,
                               ref['grad_generator_fc1_weight'], **TOL)
    torch.testing.assert_close(model.neck.mlp[0].weight.grad,
                               ref['grad_encoder_q_fc0_weight'], **TOL)
    # the key encoder gets no gradient
    assert all(p.grad is None for p in model.encoder_k.parameters())


def test_generator_formula_and_ratio_draw():
    torch.manual_seed(0)
    gen = HallucinatorGenerator(feat_dim=8, hidden_dim=12)
    q, k = torch.randn(5, 8), F.normalize(torch.randn(5, 8), dim=1)
    lam = 0.07
    expected = gen.mlp(torch.cat((q, (1 + lam) * q - lam * k), 1))
    out = gen(q, k, lam)
    assert out.shape == (10, 8)
    torch.testing.assert_close(out[5:], expected)
    # λ = 0: the MLP sees [q; q]
    torch.testing.assert_close(gen(q, k, 0.)[5:], gen.mlp(torch.cat((q, q), 1)))
    # one λ ~ U(0, max_ratio) per call, from python's random; injectable
    import random
    random.seed(3)
    draws = [gen.sample_ratio() for _ in range(200)]
    assert 0 <= min(draws) and max(draws) <= 0.1 and len(set(draws)) == 200
    random.seed(3)
    assert gen.sample_ratio() == draws[0]
    gen.ratio_sampler = lambda: 0.05
    torch.testing.assert_close(gen(q, k)[5:], gen.hallucinate(q, k, 0.05))


def test_moco_enqueues_duplicated_keys_and_checks_queue_len():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 8, 8)
    model = _tiny_moco(queue_len=16)
    model.init_weights()
    # the key encoder starts as a copy of the query encoder (params and buffers)
    q_sd = nn.Sequential(model.backbone, model.neck).state_dict()
    for k, v in model.encoder_k.module.state_dict().items():
        assert torch.equal(v, q_sd[k]), k
    model.train()
    losses = model.loss([x, x + 0.1])
    assert int(model.queue_ptr) == 8
    assert torch.equal(model.queue[:, :4], model.queue[:, 4:8])  # [k; k]
    assert set(losses) == {'loss', 'pos_cos', 'halluc_pos_cos'}
    with pytest.raises(ValueError, match='two augmented views'):
        model.loss(x)


def test_moco_queue_len_error_message():
    model = _tiny_moco(queue_len=12)
    model.init_weights()
    x = torch.randn(4, 3, 8, 8)
    with pytest.raises(ValueError, match='queue_len=12 must be a multiple.*8 = 2 x batch'):
        model.loss([x, x])


def _official_nt_xent(f1, f2, temperature, base_temperature):
    """NT_Xent of the official losses/NT_Xent.py (positives f1_i <-> f2_i), restated."""
    b = f1.shape[0]
    feats = F.normalize(torch.cat([f1, f2]), dim=1)
    logits = feats @ feats.t() / temperature
    logits = logits - logits.max(1, keepdim=True)[0].detach()
    eye = torch.eye(2 * b, dtype=torch.bool)
    pos = torch.zeros_like(eye)
    pos[:b, b:] = torch.eye(b, dtype=torch.bool)
    pos[b:, :b] = torch.eye(b, dtype=torch.bool)
    log_prob = logits[pos] - torch.log(torch.exp(logits)[~eye].view(2 * b, -1).sum(1))
    # row order of logits[pos]: rows 0..2b-1 in order
    return -(temperature / base_temperature) * log_prob.mean()


def _simclr(t=0.5, base_t=0.07):
    return MODELS.build(dict(
        type='mmmask.HallucinatorSimCLR',
        backbone=dict(type='mmpretrain.ResNet_CIFAR', depth=18, stem_channels=8,
                      base_channels=8),
        neck=dict(type='mmpretrain.NonLinearNeck', in_channels=64, hid_channels=64,
                  out_channels=32, num_layers=2, with_avg_pool=True),
        head=dict(type='mmpretrain.ContrastiveHead', temperature=t,
                  loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=t / base_t)),
        hallucinator=dict(), feat_dim=32))


def test_simclr_matches_official_formula_and_trains_generator():
    torch.manual_seed(0)
    model = _simclr()
    model.init_weights()
    model.train()
    model.hallucinator.ratio_sampler = lambda: 0.08
    v1, v2 = torch.randn(6, 3, 16, 16), torch.randn(6, 3, 16, 16)
    losses = model.loss([v1, v2])
    # official: two separate forwards, q = G(z1, z2, λ), k = [z2; z2], NT_Xent(q, k)
    z1 = model.neck(model.backbone(v1))[0]
    z2 = model.neck(model.backbone(v2))[0]
    ref = _official_nt_xent(model.hallucinator(z1, z2, 0.08), torch.cat([z2, z2]), 0.5, 0.07)
    torch.testing.assert_close(losses['loss'], ref, atol=1e-5, rtol=1e-5)
    model.zero_grad()
    # a full train_step through the optimiser: the generator receives gradient and moves
    from mmengine.optim import OptimWrapper
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    before = model.hallucinator.mlp[0].weight.detach().clone()
    data = dict(inputs=[v1 * 64 + 127, v2 * 64 + 127], data_samples=None)
    model.data_preprocessor = MODELS.build(dict(type='mmpretrain.SelfSupDataPreprocessor'))
    grads = []
    model.hallucinator.mlp[0].weight.register_hook(grads.append)
    log = model.train_step(data, optim)
    assert torch.isfinite(log['loss'])
    assert len(grads) == 1 and grads[0].abs().sum() > 0
    assert not torch.equal(before, model.hallucinator.mlp[0].weight)


def _simsiam():
    return MODELS.build(dict(
        type='mmmask.HallucinatorSimSiam',
        backbone=dict(type='mmpretrain.ResNet_CIFAR', depth=18, stem_channels=8,
                      base_channels=8),
        neck=dict(type='mmpretrain.NonLinearNeck', in_channels=64, hid_channels=32,
                  out_channels=32, num_layers=3, with_last_bn_affine=False,
                  with_avg_pool=True),
        head=dict(type='mmpretrain.LatentPredictHead',
                  loss=dict(type='mmpretrain.CosineSimilarityLoss'),
                  predictor=dict(type='mmpretrain.NonLinearNeck', in_channels=32,
                                 hid_channels=8, out_channels=32, with_avg_pool=False,
                                 with_last_bn=False, with_last_bias=True)),
        hallucinator=dict()))


def test_simsiam_matches_official_formula_and_trains_generator():
    torch.manual_seed(0)
    model = _simsiam()
    model.init_weights()
    model.train()
    assert model.hallucinator.feat_dim == 32
    ratios = iter([0.03, 0.09])
    model.hallucinator.ratio_sampler = lambda: next(ratios)
    v1, v2 = torch.randn(6, 3, 16, 16), torch.randn(6, 3, 16, 16)
    losses = model.loss([v1, v2])
    # official models/simsiam.py + DDP_simsiam.py: λ1 for p1 (key p2), λ2 for p2 (key p1)
    z1 = model.neck(model.backbone(v1))[0]
    z2 = model.neck(model.backbone(v2))[0]
    p1, p2 = model.head.predictor([z1])[0], model.head.predictor([z2])[0]
    P1 = model.hallucinator(p1, p2, 0.03)
    P2 = model.hallucinator(p2, p1, 0.09)
    cos = nn.CosineSimilarity(dim=1)
    ref = -0.5 * (cos(P1, torch.cat((z2, z2)).detach()).mean()
                  + cos(P2, torch.cat((z1, z1)).detach()).mean())
    torch.testing.assert_close(losses['loss'], ref, atol=1e-5, rtol=1e-5)
    from mmengine.optim import OptimWrapper
    model.zero_grad()
    model.hallucinator.ratio_sampler = None
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    before = model.hallucinator.mlp[4].weight.detach().clone()
    model.data_preprocessor = MODELS.build(dict(type='mmpretrain.SelfSupDataPreprocessor'))
    grads = []
    model.hallucinator.mlp[0].weight.register_hook(grads.append)
    log = model.train_step(dict(inputs=[v1 * 64 + 127, v2 * 64 + 127], data_samples=None),
                           optim)
    assert torch.isfinite(log['loss'])
    assert grads and all(g.abs().sum() > 0 for g in grads)
    assert not torch.equal(before, model.hallucinator.mlp[4].weight)


def test_converter_against_paper_config_keys():
    keys = json.load(open(osp.join(DATA, 'keys_moco_resnet18_cifar_hallucinate.json')))['keys']
    sd = {f'module.{k}': torch.zeros(v) for k, v in keys.items()}
    for k in sd:
        if 'generator' in k:  # fc* and MLP.* are the same tensors
            sd[k] = torch.full(keys[k[len('module.'):]], 0.5)
    out = convert_hallucinator_moco(sd)
    from mmmask.models.converters.common import check_against_config
    cfg = osp.join(REPO, 'configs', 'hallucinator',
                   'hallucinator-mocov2_resnet18-cifar_1xb512-coslr-500e_cifar10.py')
    check_against_config(out, cfg)  # missing, extra and mis-shaped keys raise
    bb = convert_hallucinator_moco(sd, backbone_only=True)
    assert bb and all(k.startswith('backbone.') for k in bb)
    assert len(bb) == sum(k.startswith('encoder_q.') and '.fc.' not in k for k in keys)


def test_converter_errors():
    with pytest.raises(ConversionError, match='not an official MoCo'):
        convert_hallucinator_moco({'backbone.conv1.weight': torch.zeros(1)})
    sd = {'encoder_q.conv1.weight': torch.zeros(1), 'encoder_q.fc.weight': torch.zeros(1),
          'queue': torch.zeros(1), 'queue_ptr': torch.zeros(1)}
    with pytest.raises(ConversionError, match='plain MoCo checkpoint'):
        convert_hallucinator_moco(sd)
    assert set(convert_hallucinator_moco(sd, backbone_only=True)) == {'backbone.conv1.weight'}
    bad = dict(sd, **{'generator.fc1.weight': torch.ones(2), 'generator.MLP.0.weight':
                      torch.zeros(2)})
    with pytest.raises(ConversionError, match='same tensor'):
        convert_hallucinator_moco(bad)
    with pytest.raises(ConversionError, match='not Hallucinator MoCo keys'):
        convert_hallucinator_moco(dict(sd, predictor=torch.zeros(1)))


def test_bad_config_errors():
    with pytest.raises(ValueError, match='does not match the embedding width'):
        _tiny_moco(hallucinator=dict(feat_dim=64))
    gen = HallucinatorGenerator(feat_dim=8)
    with pytest.raises(ValueError, match=r'shape \[N, 8\]'):
        gen(torch.zeros(2, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match='LatentPredictHead'):
        MODELS.build(dict(
            type='mmmask.HallucinatorSimSiam',
            backbone=dict(type='mmpretrain.ResNet_CIFAR', depth=18),
            neck=dict(type='mmpretrain.MoCoV2Neck', in_channels=512, hid_channels=64,
                      out_channels=32),
            head=dict(type='mmpretrain.ContrastiveHead', temperature=0.2,
                      loss=dict(type='mmpretrain.CrossEntropyLoss'))))


def test_backbone_only_checkpoint_loads_into_linear_config(tmp_path):
    """Official checkpoint -> --backbone-only -> the CIFAR-10 linear-probe config's backbone."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmmask.models.converters.common import save_converted
    keys = json.load(open(osp.join(DATA, 'keys_moco_resnet18_cifar_hallucinate.json')))['keys']
    torch.manual_seed(0)
    sd = {k: torch.randn(v) if v else torch.tensor(3) for k, v in keys.items()
          if k.startswith('encoder_q.')}
    dst = str(tmp_path / 'bb.pth')
    save_converted(convert_hallucinator_moco(sd, backbone_only=True), dst, 'last.pth', 'test')
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'hallucinator',
                                   'resnet18-cifar_linear-100e_cifar10.py'))
    init_default_scope('mmpretrain')
    cfg.model.backbone.init_cfg.checkpoint = dst
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    model = PRETRAIN_MODELS.build(cfg.model)
    model.init_weights()
    ours = model.backbone.state_dict()
    for k, v in sd.items():
        name = k[len('encoder_q.'):]
        if not name.startswith('fc.'):
            assert torch.equal(ours[name], v), name
