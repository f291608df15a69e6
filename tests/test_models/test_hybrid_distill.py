"""Hybrid Distill (ICLR'24): exact loss formulas, relation restriction, the progressive redundant
masking schedule, shapes/gradients, frozen teachers, configs, errors. No official code exists
(no parity fixture): every formula is checked against an independent computation."""
import copy
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

from mmmask.models.selfsup import HybridDistill
from mmmask.models.selfsup.attention_maps import attention_probs
from mmmask.models.selfsup.hybrid_distill import (feature_distill_loss, relation_distill_loss,
                                                   visible_relations, vit_forward_with_attention)
from mmmask.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG_DIR = osp.join(REPO, 'configs', 'hybrid_distill')
TOY = osp.join(CFG_DIR, 'hybrid_distill_vit-tiny-p8_1xb64-30e_toy-pretrain.py')
PAPER = osp.join(CFG_DIR, 'hybrid_distill_vit-base-p16_8xb256-300e_in1k.py')
TOY_VIT = dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)
PRE = dict(type='mmpretrain.SelfSupDataPreprocessor', mean=[127.5] * 3, std=[64.] * 3,
           to_rgb=True)


def vit(arch=TOY_VIT, **kw):
    return dict(type='mmpretrain.VisionTransformer', arch=arch, img_size=32, patch_size=8, **kw)


def build(**over) -> HybridDistill:
    cfg = dict(
        type='mmmask.HybridDistill', data_preprocessor=PRE,
        backbone=dict(type='mmmask.MaskedViT', arch=TOY_VIT, img_size=32, patch_size=8),
        cl_teacher=vit(), mim_teacher=vit(),
        neck=dict(type='mmmask.DynamicAlignNeck', in_channels=32, out_channels=32,
                  num_student_levels=1, fusion='simple'),
        head=dict(type='mmmask.HybridDistillHead'))
    cfg.update(over)
    model = MODELS.build(cfg)
    with pytest.warns(UserWarning, match='random teacher'):
        model.init_weights()
    return model


@pytest.fixture
def progress():
    """Set the MessageHub's iteration counters (what RuntimeInfoHook publishes in training)."""
    hub = MessageHub.get_current_instance()

    def set_(it, total):
        hub.update_info('iter', it)
        hub.update_info('max_iters', total)

    yield set_
    set_(0, 1)


# -- exact formulas ------------------------------------------------------------------------------
def test_feature_loss_is_smooth_l1_beta2():
    torch.manual_seed(0)
    p, t = torch.randn(2, 5, 7) * 3, torch.randn(2, 5, 7)
    d = (p - t).abs()
    manual = torch.where(d < 2.0, 0.5 * d**2 / 2.0, d - 1.0).mean()
    torch.testing.assert_close(feature_distill_loss(p, t), manual)
    d1 = torch.where(d < 0.5, 0.5 * d**2 / 0.5, d - 0.25).mean()
    torch.testing.assert_close(feature_distill_loss(p, t, beta=0.5), d1)
    with pytest.raises(ValueError, match='out_channels'):
        feature_distill_loss(p, t[..., :3])


def test_relation_loss_is_teacher_to_student_kl():
    torch.manual_seed(0)
    s = torch.softmax(torch.randn(2, 3, 4, 4), -1)
    t = torch.softmax(torch.randn(2, 3, 4, 4), -1)
    manual = sum(
        float(t[b, h, i, j] * (t[b, h, i, j].log() - s[b, h, i, j].log()))
        for b in range(2) for h in range(3) for i in range(4) for j in range(4)) / (2 * 3 * 4)
    assert abs(relation_distill_loss(s, t).item() - manual) < 1e-5
    # == torch's KL with the teacher as target, averaged over (batch, head, query) rows
    ref = F.kl_div(s.log(), t, reduction='sum') / (2 * 3 * 4)
    torch.testing.assert_close(relation_distill_loss(s, t), ref)
    assert relation_distill_loss(t, t).abs().item() < 1e-6
    # head_reduce='mean' compares head-averaged maps (different head counts)
    t2 = torch.softmax(torch.randn(2, 5, 4, 4), -1)
    sm, tm = s.mean(1, keepdim=True), t2.mean(1, keepdim=True)
    torch.testing.assert_close(relation_distill_loss(s, t2, 'mean'),
                               F.kl_div(sm.log(), tm, reduction='sum') / (2 * 4))
    with pytest.raises(ValueError, match="head_reduce='mean'"):
        relation_distill_loss(s, t2)
    with pytest.raises(ValueError, match='head_reduce'):
        relation_distill_loss(s, t, 'max')


def test_visible_relations_equal_softmax_over_visible_keys():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 10, 10)  # cls + 9 patches
    ids_keep = torch.tensor([[0, 4, 7], [8, 1, 2]])
    out = visible_relations(torch.softmax(logits, -1), ids_keep)
    for b in range(2):
        idx = torch.cat([torch.tensor([0]), ids_keep[b] + 1])
        ref = torch.softmax(logits[b][:, idx][:, :, idx], -1)
        torch.testing.assert_close(out[b], ref)
    torch.testing.assert_close(out.sum(-1), torch.ones(2, 3, 4))


def test_head_weights_and_layer_mean():
    torch.manual_seed(0)
    head = MODELS.build(dict(type='mmmask.HybridDistillHead', feat_weight=0.5, rel_weight=2.0))
    p, t = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    rs = [torch.softmax(torch.randn(2, 2, 3, 3), -1) for _ in range(2)]
    rt = [torch.softmax(torch.randn(2, 2, 3, 3), -1) for _ in range(2)]
    out = head.loss(p, t, rs, rt)
    torch.testing.assert_close(out['loss_feat'], 0.5 * feature_distill_loss(p, t))
    rel = (relation_distill_loss(rs[0], rt[0]) + relation_distill_loss(rs[1], rt[1])) / 2
    torch.testing.assert_close(out['loss_rel'], 2.0 * rel)
    with pytest.raises(ValueError, match='relation layers'):
        head.loss(p, t, rs, rt[:1])
    with pytest.raises(ValueError, match='smooth_l1_beta'):
        MODELS.build(dict(type='mmmask.HybridDistillHead', smooth_l1_beta=0))


# -- the model -----------------------------------------------------------------------------------
def test_teacher_forward_matches_mmpretrain_vit():
    """Last raw block output == mmpretrain's own forward without the final norm; recorded
    attention == softmax(q k^T / sqrt(d)) of that block's input."""
    torch.manual_seed(0)
    t = MODELS.build(vit(final_norm=False, out_type='raw'))
    t.init_weights()
    t.eval()
    x = torch.randn(2, 3, 32, 32)
    feat, maps = vit_forward_with_attention(t, x, [0, -1])
    torch.testing.assert_close(feat, t(x)[0])
    assert set(maps) >= {0, 2, -1} and maps[-1].shape == (2, 2, 17, 17)
    # block 0's input is the embedded sequence
    emb = torch.cat([t.cls_token.expand(2, -1, -1), t.patch_embed(x)[0]], 1) + t.pos_embed
    torch.testing.assert_close(maps[0], attention_probs(t.layers[0].attn, t.layers[0].ln1(emb)))


def test_progressive_redundant_masking_schedule(progress):
    """Ratio = start + (end - start) * iter / max_iters; the masked tokens are those with the least
    cls attention of the CL teacher's last block (head mean)."""
    torch.manual_seed(0)
    model = build(mask_generator=dict(type='mmmask.ProgressiveRedundantMasking',
                                      start_ratio=0.0, end_ratio=0.5))
    x = torch.randn(3, 3, 32, 32)
    _, maps = vit_forward_with_attention(model.cl_teacher, x, [-1])
    importance = maps[-1][:, :, 0, 1:].mean(1)
    for it, ratio in ((0, 0.0), (50, 0.25), (100, 0.5)):
        progress(it, 100)
        res = model.forward_train(x)
        n_mask = 16 - int(16 * (1 - ratio))
        assert res['sample'].mask.sum(1).tolist() == [n_mask] * 3
        torch.testing.assert_close(res['importance'], importance)
        expected = torch.zeros(3, 16, dtype=torch.bool)
        expected.scatter_(1, importance.argsort(1)[:, :n_mask], True)
        assert torch.equal(res['sample'].mask, expected)
        K = 16 - n_mask
        assert res['pred'].shape == res['target'].shape == (3, 1 + K, 32)
        for s, t in zip(res['student_relations'], res['teacher_relations']):
            assert s.shape == t.shape == (3, 2, 1 + K, 1 + K)
    # mask_source='mim' ranks by the MIM teacher's cls attention instead
    model = build(mask_source='mim')
    _, maps = vit_forward_with_attention(model.mim_teacher, x, [-1])
    torch.testing.assert_close(model.forward_train(x)['importance'],
                               maps[-1][:, :, 0, 1:].mean(1))


def test_targets_and_identical_student_zero_relation_loss(progress):
    """Targets = whitened CL-teacher last block at [cls, visible]. A student that *is* the MIM
    teacher has zero relation loss at block 0 even with masking (its attention over the visible
    tokens = the teacher's restricted and renormalised)."""
    torch.manual_seed(0)
    model = build(relation_layers=[0, 1])
    model.backbone.load_state_dict(model.mim_teacher.state_dict(), strict=False)
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    progress(50, 100)  # ratio 0.25 -> 12 of 16 tokens kept
    res = model.forward_train(x)
    keep = res['sample'].ids_keep
    assert keep.shape == (2, 12)
    feat, _ = vit_forward_with_attention(model.cl_teacher, x, [-1])
    y = F.layer_norm(feat, (32, ))
    for b in range(2):
        idx = torch.cat([torch.tensor([0]), keep[b] + 1])
        torch.testing.assert_close(res['target'][b], y[b, idx])
    losses = model.head.loss(res['pred'], res['target'], res['student_relations'][:1],
                             res['teacher_relations'][:1])
    assert losses['loss_rel'].abs().item() < 1e-5
    # block 1 already mixes the (missing) masked tokens: relations differ
    assert relation_distill_loss(res['student_relations'][1],
                                 res['teacher_relations'][1]).item() > 1e-4
    progress(0, 1)  # unmasked: every block matches
    res = model.forward_train(x)
    for s, t in zip(res['student_relations'], res['teacher_relations']):
        assert relation_distill_loss(s, t).abs().item() < 1e-5


def test_loss_grads_and_frozen_teachers(progress):
    torch.manual_seed(0)
    model = build()
    model.train()
    assert model.backbone.training and not model.cl_teacher.training \
        and not model.mim_teacher.training
    for t in (model.cl_teacher, model.mim_teacher):
        assert not any(p.requires_grad for p in t.parameters())
    progress(50, 100)
    losses = model.loss(torch.randn(4, 3, 32, 32))
    assert set(losses) == {'loss_feat', 'loss_rel', 'mask_ratio'}
    assert abs(losses['mask_ratio'].item() - 0.25) < 1e-6
    (losses['loss_feat'] + losses['loss_rel']).backward()
    for t in (model.cl_teacher, model.mim_teacher):
        assert all(p.grad is None for p in t.parameters())
    assert model.neck.heads[0].weight.grad.abs().sum() > 0
    # both losses reach the student: relations (qkv of a distilled block) and features
    model.zero_grad()
    model.loss(torch.randn(4, 3, 32, 32))['loss_rel'].backward()
    assert model.backbone.layers[0].attn.qkv.weight.grad.abs().sum() > 0
    assert model.neck.heads[0].weight.grad is None
    assert model.backbone.layers[-1].attn.qkv.weight.grad is None  # last block: no relation


def toy_cfg(cl=None, mim=None):
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(TOY)
    cfg.model.cl_teacher.init_cfg = None if cl is None else dict(
        type='Pretrained', checkpoint=cl, prefix='backbone.')
    cfg.model.mim_teacher.init_cfg = None if mim is None else dict(
        type='Pretrained', checkpoint=mim, prefix='backbone.')
    return cfg


def test_toy_config_train_step_loads_and_keeps_teachers_frozen(tmp_path):
    cfg = toy_cfg()
    ckpts, ref = {}, {}
    for name in ('cl_teacher', 'mim_teacher'):
        torch.manual_seed(len(name))
        t = MODELS.build(dict(type='mmpretrain.VisionTransformer', **{
            k: v for k, v in cfg.model[name].items() if k not in ('type', 'init_cfg')}))
        ckpts[name] = str(tmp_path / f'{name}.pth')
        ref[name] = t.state_dict()
        torch.save({'state_dict': {'backbone.' + k: v for k, v in t.state_dict().items()}},
                   ckpts[name])
    cfg = toy_cfg(ckpts['cl_teacher'], ckpts['mim_teacher'])
    model = MODELS.build(cfg.model)
    model.init_weights()
    for name in ('cl_teacher', 'mim_teacher'):
        for k, v in ref[name].items():
            torch.testing.assert_close(getattr(model, name).state_dict()[k], v)
    model.train()
    ow = build_optim_wrapper(model, cfg.optim_wrapper)
    before = {n: copy.deepcopy(getattr(model, n).state_dict()) for n in ckpts}
    s_before = model.backbone.layers[0].attn.qkv.weight.detach().clone()
    batch = dict(inputs=torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8),
                 data_samples=[DataSample() for _ in range(4)])
    out = model.train_step(batch, ow)
    assert torch.isfinite(out['loss']) and 'loss_rel' in out
    for n in ckpts:
        assert all(torch.equal(v, getattr(model, n).state_dict()[k])
                   for k, v in before[n].items())
    assert not torch.equal(s_before, model.backbone.layers[0].attn.qkv.weight)
    # any generator with ids_keep works: plain random masking
    model.mask_generator = MODELS.build(dict(type='mmmask.RandomMasking', ratio=0.5))
    assert torch.isfinite(model.train_step(batch, ow)['loss'])


# -- errors --------------------------------------------------------------------------------------
def test_incompatible_configs_raise():
    with pytest.raises(ValueError, match='same img_size/patch_size'):
        build(cl_teacher=dict(type='mmpretrain.VisionTransformer', arch=TOY_VIT, img_size=32, patch_size=16))
    with pytest.raises(ValueError, match="head_reduce='mean'"):
        build(mim_teacher=vit(dict(TOY_VIT, num_heads=4)))
    build(mim_teacher=vit(dict(TOY_VIT, num_heads=4)),
          head=dict(type='mmmask.HybridDistillHead', head_reduce='mean'))
    deeper = vit(dict(TOY_VIT, num_layers=6))
    with pytest.raises(ValueError, match='set mim_layers'):
        build(mim_teacher=deeper)
    m = build(mim_teacher=deeper, mim_layers=[1, 3])
    assert m.relation_layers == [0, 1] and m.mim_layers == [1, 3]
    with pytest.raises(ValueError, match='one MIM-teacher block'):
        build(mim_teacher=deeper, mim_layers=[1])
    with pytest.raises(ValueError, match='out of range'):
        build(relation_layers=[5])
    with pytest.raises(ValueError, match='neck.out_channels=64'):
        build(cl_teacher=vit(dict(TOY_VIT, embed_dims=64, feedforward_channels=64)))
    with pytest.raises(ValueError, match='mmmask.MaskedViT'):
        build(backbone=vit())
    with pytest.raises(ValueError, match='mask_source'):
        build(mask_source='both')
    with pytest.raises(ValueError, match='cls token'):
        build(cl_teacher=vit(with_cls_token=False, out_type='featmap'))
    with pytest.raises(ValueError, match='mean=.*std='):
        build(cl_teacher_norm=dict(mean=[0, 0, 0]))
    model = build(mask_generator=dict(type='mmmask.DoubleMasking'))
    with pytest.raises(ValueError, match='ids_keep'):
        model.loss(torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match='img_size'):
        build().loss(torch.randn(2, 3, 48, 48))


def test_missing_teacher_checkpoint():
    cfg = toy_cfg('does/not/exist.pth', 'nor/this.pth')
    model = MODELS.build(cfg.model)
    with pytest.raises(ValueError, match='cl_teacher checkpoint .*README'):
        model.init_weights()


def test_teacher_renormalisation():
    """A CLIP-statistics teacher sees (raw - its mean) / its std."""
    clip = dict(mean=[120., 110., 100.], std=[70., 60., 50.])
    model = build(cl_teacher_norm=clip)
    x = torch.randn(1, 3, 32, 32)
    raw = x * 64. + 127.5
    ref = (raw - torch.tensor(clip['mean']).view(1, 3, 1, 1)) / torch.tensor(
        clip['std']).view(1, 3, 1, 1)
    torch.testing.assert_close(model.teacher_input(x, 'cl'), ref)
    assert torch.equal(model.teacher_input(x, 'mim'), x)


def test_paper_config_builds():
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(PAPER)
    assert cfg.train_cfg.max_epochs == 300
    assert cfg.model.head.feat_weight == 1.0 and cfg.model.head.rel_weight == 1.0
    cfg.model.cl_teacher.init_cfg = None
    cfg.model.mim_teacher.init_cfg = None
    model = MODELS.build(cfg.model)
    assert model.backbone.embed_dims == 768 and len(model.cl_teacher.layers) == 12
    assert model.relation_layers == list(range(11))
