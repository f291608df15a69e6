"""MCL: pseudo-label integration parity with the released cluster.py (quirk) and the paper's
composition, k-means properties, the MCL wrapper (stage freezing, reinit, cross-stage features,
state-dict round trip), the transfer backbone and the errors.

No converter: the official code fine-tunes open_clip CLIP models; those checkpoints have no
mmpretrain counterpart (see configs/mcl/README.md)."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.registry import init_default_scope

from conftest import REPO
from mmmask.engine.hooks.mcl_hook import integrate_pseudo_labels, kmeans
from mmmask.models.selfsup.mcl import MCL, MCLStagesBackbone, mcl_stage_state_dicts
from mmmask.registry import MODELS

FIXTURES = osp.join(REPO, 'tests', 'data', 'parity', 'mcl')

ALGO = dict(
    type='SimCLR',
    data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=[127.5] * 3, std=[64.0] * 3,
                           to_rgb=True),
    backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=8, base_channels=8),
    neck=dict(type='NonLinearNeck', in_channels=64, hid_channels=32, out_channels=16,
              num_layers=2, with_avg_pool=True),
    head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'), temperature=0.1))


def _mcl(**kwargs) -> MCL:
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(dict(type='mmmask.MCL', algorithm=copy.deepcopy(ALGO), **kwargs))
    model.init_weights()
    return model


# --------------------------------------------------------------------------- integration parity
def test_integration_parity_official_quirk_and_paper():
    fx = torch.load(osp.join(FIXTURES, 'mcl_pseudo_labels_stage1.pt'), weights_only=False)
    labels, k = fx['inputs']['cluster_labels_per_stage'], fx['meta']['num_clusters']
    assert fx['meta']['stage'] == len(labels) - 1 == 1
    official = integrate_pseudo_labels(labels, k, 'official')
    assert torch.equal(official, fx['outputs']['pseudo_labels'])
    assert torch.equal(official, labels[1] * (k + 1))  # only the current stage, sparse ids
    paper = integrate_pseudo_labels(labels, k, 'paper')
    assert torch.equal(paper, fx['outputs']['reference_intended_not_official'])
    assert torch.equal(paper, labels[0] * k + labels[1])
    # stage 0: both modes are the stage-0 clusters
    assert torch.equal(integrate_pseudo_labels(labels[:1], k, 'official'), labels[0])
    assert torch.equal(integrate_pseudo_labels(labels[:1], k, 'paper'), labels[0])
    # stage 2 quirk: c_2 · (K² + K + 1)
    c2 = torch.tensor([0, 1, 2])
    out = integrate_pseudo_labels([c2 * 0, c2 * 0, c2], 3, 'official')
    assert out.tolist() == [0, 13, 26]
    with pytest.raises(ValueError, match="'official'"):
        integrate_pseudo_labels(labels, k, 'intended')


# -------------------------------------------------------------------------------------- k-means
def test_kmeans_recovers_separated_clusters_and_is_seeded():
    g = torch.Generator().manual_seed(0)
    centres = torch.eye(4) * 5
    truth = torch.arange(4).repeat_interleave(50)
    x = centres[truth] + 0.1 * torch.randn(200, 4, generator=g)
    for batch_size in (None, 32):
        c, lab, inertia = kmeans(x, 4, seed=1, batch_size=batch_size)
        # a permutation of the true partition
        pairs = {(int(a), int(b)) for a, b in zip(truth, lab)}
        assert len(pairs) == 4 and len({b for _, b in pairs}) == 4
        assert inertia == pytest.approx(float(((x - c[lab]) ** 2).sum()), rel=1e-4)
        assert inertia < 200 * 4 * 0.1 ** 2 * 1.5
    a, b = kmeans(x, 4, seed=3)[1], kmeans(x, 4, seed=3)[1]
    assert torch.equal(a, b)
    # labels are the nearest centroids; every cluster non-empty even with duplicates
    dup = torch.cat([torch.zeros(10, 2), torch.ones(10, 2)])
    c, lab, _ = kmeans(dup, 3, seed=0)
    assert torch.equal(lab, torch.cdist(dup, c).argmin(1))
    with pytest.raises(ValueError, match='n >= k'):
        kmeans(torch.zeros(2, 3), 5)


# ------------------------------------------------------------------------------------- wrapper
def test_stage_freeze_reinit_and_cross_stage_features():
    model = _mcl()
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    f0 = model.extract_feat(x)[0]
    assert f0.shape == (2, 64, 4, 4) and model.num_finished == 0
    emb = model.cluster_feat(x)
    assert emb.shape == (2, 16) and torch.allclose(emb.norm(dim=1), torch.ones(2))
    before = copy.deepcopy(model.algorithm.backbone.state_dict())
    params = [id(p) for p in model.algorithm.parameters()]
    model.finish_stage(reinit=True)
    assert model.num_finished == 1 and int(model.stage) == 1
    frozen = model.stage_backbones[0]
    assert all(not p.requires_grad for p in frozen.parameters())
    assert all(torch.equal(v, frozen.state_dict()[k]) for k, v in before.items())
    # fresh weights in the same parameter objects (the optimizer keeps them)
    assert [id(p) for p in model.algorithm.parameters()] == params
    assert not torch.equal(model.algorithm.backbone.state_dict()['conv1.weight'],
                           before['conv1.weight'])
    model.eval()
    both = model.extract_feat(x)[0]
    assert both.shape == (2, 128, 4, 4)
    assert torch.allclose(both[:, :64], f0, atol=1e-6)  # stage 0 part unchanged
    assert torch.allclose(model.extract_feat(x, stages=[0])[0], f0, atol=1e-6)
    with pytest.raises(IndexError, match='0..1'):
        model.extract_feat(x, stages=[2])
    model.train()
    assert not frozen.training and model.algorithm.training
    # continue mode keeps the weights
    w = model.algorithm.backbone.conv1.weight.detach().clone()
    model.finish_stage(reinit=False)
    assert torch.equal(model.algorithm.backbone.conv1.weight, w)
    assert model.extract_feat(x)[0].shape == (2, 192, 4, 4)


def test_loss_and_gradient_only_in_current_stage():
    model = _mcl()
    model.finish_stage()
    model.train()
    views = [torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)]
    losses = model(views, [None] * 4, mode='loss')
    assert torch.isfinite(losses['loss']) and float(losses['mcl_stage']) == 1.0
    losses['loss'].backward()
    assert all(p.grad is None for p in model.stage_backbones.parameters())
    assert model.algorithm.backbone.conv1.weight.grad is not None
    loss, log_vars = model.parse_losses(losses)
    assert log_vars['mcl_stage'] == 1.0 and torch.equal(loss, losses['loss'])


def test_state_dict_round_trip_creates_stage_encoders(tmp_path):
    from mmengine.runner.checkpoint import load_state_dict as mme_load
    model = _mcl()
    model.finish_stage()
    model.finish_stage()
    sd = model.state_dict()
    assert int(sd['stage']) == 2 and any(k.startswith('stage_backbones.1.') for k in sd)
    for loader in ('torch', 'mmengine'):
        fresh = _mcl()
        if loader == 'torch':
            fresh.load_state_dict(sd)
        else:
            mme_load(fresh, sd, strict=True)
        assert fresh.num_finished == 2 and int(fresh.stage) == 2
        x = torch.randn(2, 3, 32, 32)
        model.eval(), fresh.eval()
        assert torch.allclose(model.extract_feat(x)[0], fresh.extract_feat(x)[0])
    # the transfer backbone loads the stage encoders of the checkpoint
    path = str(tmp_path / 'mcl.pth')
    torch.save(dict(state_dict=sd), path)
    per_stage = mcl_stage_state_dicts(sd)
    assert len(per_stage) == 3
    init_default_scope('mmpretrain')
    bb = MODELS.build(dict(type='mmmask.MCLStagesBackbone', backbone=ALGO['backbone'],
                           num_stages=3, mcl_checkpoint=path, frozen=True))
    bb.init_weights()
    bb.train()
    assert not bb.stages[0].training
    assert torch.allclose(bb(x)[0], model.extract_feat(x)[0], atol=1e-6)
    wrong = MCLStagesBackbone(ALGO['backbone'], num_stages=2, mcl_checkpoint=path)
    with pytest.raises(ValueError, match='num_stages'):
        wrong.init_weights()
    with pytest.raises(KeyError, match='mmmask.MCL checkpoint'):
        mcl_stage_state_dicts({'backbone.conv1.weight': torch.zeros(1)})


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match="'neck' or 'backbone'"):
        _mcl(cluster_feature='proj')
    with pytest.raises(TypeError, match='algorithm=dict'):
        MCL(algorithm='SimCLR')
    with pytest.raises(TypeError, match='`neck` module'):
        init_default_scope('mmpretrain')
        MCL(algorithm=dict(type='MAE', backbone=dict(type='MAEViT', arch='b', patch_size=16),
                           neck=None, head=dict(type='MAEPretrainHead', patch_size=16,
                                                loss=dict(type='PixelReconstructionLoss',
                                                          criterion='L2'))))
    with pytest.raises(ValueError, match='num_stages'):
        MCLStagesBackbone(ALGO['backbone'], num_stages=0)
