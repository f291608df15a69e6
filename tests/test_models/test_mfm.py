"""Masked Feature Modeling (MFM) on mmmask.DACS: the Rebuilder, the training-only loss, and the
unchanged inference graph."""
import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from torch.utils.flop_counter import FlopCounterMode

import test_uda
from test_uda import NUM_CLASSES, fake_batch

from mmmask.models.layers.mfm_rebuilder import MFMRebuilder, random_patch_mask
from mmmask.registry import MODELS

#: the DACS unit tests' student with a dilated (output stride 8) backbone: 4x4 cells of a 32x32 crop
STUDENT = copy.deepcopy(test_uda.STUDENT)
STUDENT['backbone'].update(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4))
MFM = dict(rebuilder=dict(type='mmmask.MFMRebuilder', in_channels=[8, 16, 32, 64], levels=[3],
                          mask_ratio=0.5, patch_size=1, num_convs=2, hidden_ratio=0.5),
           loss_weight=1.0, on='target')


def build_dacs(**kwargs):
    return test_uda.build_dacs(STUDENT, **kwargs)


# -- the Rebuilder ---------------------------------------------------------------------------------
@pytest.mark.parametrize('token', ['learned', 'zero'])
def test_rebuilder_keeps_shapes_and_masks_the_requested_fraction(token):
    torch.manual_seed(0)
    rebuilder = MFMRebuilder([8, 16, 32], levels=[0, 2], mask_ratio=0.5, patch_size=[2, 1],
                             mask_token=token)
    feats = [torch.randn(3, 8, 16, 16), torch.randn(3, 16, 8, 8), torch.randn(3, 32, 5, 7)]
    out = rebuilder(feats)
    assert [o.shape for o in out] == [f.shape for f in feats]
    assert out[1] is feats[1]  # levels not chosen are passed through
    m0, m1, m2 = rebuilder.last_masks
    assert m1 is None and m0.shape == (3, 1, 16, 16) and m2.shape == (3, 1, 5, 7)
    # level 0: 8x8 patches of 2x2 cells, 32 of the 64 masked per image; whole patches only
    assert (m0.flatten(1).sum(1) == 128).all()
    blocks = m0.unfold(2, 2, 2).unfold(3, 2, 2).reshape(3, 8, 8, 4)
    assert ((blocks == blocks[..., :1]).all())
    # level 2: 35 cells, round(0.5 * 35) = 18 masked per image
    assert (m2.flatten(1).sum(1) == round(0.5 * 35)).all()
    # masked cells are hidden: changing the features there does not change the output
    noisy = [f.clone() for f in feats]
    noisy[0] += 100 * torch.randn_like(noisy[0]) * m0
    noisy[2] += 100 * torch.randn_like(noisy[2]) * m2
    out2 = rebuilder(noisy, masks=[m0, None, m2])
    torch.testing.assert_close(out2[0], out[0])
    torch.testing.assert_close(out2[2], out[2])
    # ... while changing them at visible cells does
    noisy[0] = feats[0] + (1 - m0)
    assert not torch.allclose(rebuilder(noisy, masks=[m0, None, m2])[0], out[0])


@pytest.mark.parametrize('ratio,patch,size', [(0.0, 1, (6, 6)), (1.0, 1, (6, 6)),
                                              (0.75, 4, (10, 9)), (0.3, 3, (9, 9))])
def test_random_patch_mask_counts(ratio, patch, size):
    g = torch.Generator().manual_seed(1)
    mask = random_patch_mask(4, size, ratio, patch, generator=g)
    gh, gw = -(-size[0] // patch), -(-size[1] // patch)
    k = round(ratio * gh * gw)
    # count masked patches via their top-left cells
    corners = mask[:, 0, ::patch, ::patch]
    assert corners.shape[-2:] == (gh, gw)
    assert (corners.flatten(1).sum(1) == k).all()
    assert mask.shape == (4, 1) + tuple(size)
    assert float(random_patch_mask(1, (1, 1), 0.2, 1).sum()) == 1.0  # never nothing masked
    masks = {tuple(m.flatten().tolist()) for m in mask}
    assert ratio in (0.0, 1.0) or len(masks) > 1  # a different draw per image


def test_rebuilder_rejects_bad_args():
    with pytest.raises(ValueError):
        MFMRebuilder([8, 16], levels=[2])
    with pytest.raises(ValueError):
        MFMRebuilder([8, 16], mask_ratio=1.5)
    with pytest.raises(ValueError):
        MFMRebuilder([8, 16], mask_token='noise')
    with pytest.raises(ValueError):
        MFMRebuilder([8, 16], levels=[0, 1], patch_size=[1])


# -- MFM in DACS -----------------------------------------------------------------------------------
def test_mfm_option_checks():
    with pytest.raises(ValueError):
        build_dacs(mfm=dict(MFM, on='source'))
    with pytest.raises(ValueError):
        build_dacs(mfm=dict(loss_weight=1.0))
    model = build_dacs(mfm=MFM)
    assert isinstance(model.mfm_rebuilder, MFMRebuilder)
    assert not any(k.startswith('mfm') for k in model.teacher.state_dict())


def test_mfm_loss_gradients_reach_rebuilder_backbone_and_decoder():
    model = build_dacs(mfm=MFM, pseudo_threshold=0.0)  # every pseudo-label gets weight 1
    model.train()
    data = model.data_preprocessor(fake_batch(), True)
    losses = model.loss(**data)
    assert 'mfm.decode.loss_ce' in losses and 'mfm.decode.acc_seg' in losses
    model.zero_grad()
    losses['mfm.decode.loss_ce'].backward()
    reb = model.mfm_rebuilder
    nonzero = lambda ps: all(p.grad is not None and p.grad.abs().sum() > 0 for p in ps)
    assert nonzero(reb.parameters())  # convs and the learned mask token
    assert nonzero([model.model.decode_head.conv_seg.weight])
    # (the last BN of each residual block starts at 0, so the stem is reached through the skips)
    assert nonzero([model.model.backbone.stem[0].weight])
    assert all(p.grad is None for p in model.teacher.parameters())


def test_mfm_loss_uses_pseudo_labels_weights_and_lambda():
    model = build_dacs(mfm=MFM)
    model.train()
    tgt = torch.randn(2, 3, 32, 32)
    pseudo = torch.randint(0, NUM_CLASSES, (2, 32, 32))

    def loss(weight, lam):
        model.mfm_lambda = lam
        torch.manual_seed(3)  # same masks
        return model.mfm_loss(tgt, pseudo, weight)['mfm.decode.loss_ce']

    ones = torch.ones(2, 32, 32)
    l1 = loss(ones, 1.0)
    torch.testing.assert_close(loss(ones, 2.5), 2.5 * l1)
    torch.testing.assert_close(loss(0.5 * ones, 1.0), 0.5 * l1)
    assert float(loss(torch.zeros(2, 32, 32), 1.0).detach()) == 0.0
    # against the student's decode head on the rebuilt features, by hand
    torch.manual_seed(3)
    feats = model.mfm_rebuilder(list(model.model.extract_feat(tgt)))
    logits = torch.nn.functional.interpolate(model.model.decode_head(feats), size=(32, 32),
                                             mode='bilinear', align_corners=False)
    torch.testing.assert_close(l1, torch.nn.functional.cross_entropy(logits, pseudo))


def _inference_params(model):
    """Names of the parameters the inference graph (``_forward``) uses."""
    model.zero_grad()
    model._forward(torch.randn(1, 3, 32, 32)).sum().backward()
    return {n for n, p in model.named_parameters() if p.grad is not None}


def test_inference_is_unchanged_by_mfm():
    plain = build_dacs()
    mfm = build_dacs(mfm=MFM)
    mfm.model.load_state_dict(plain.model.state_dict())
    keep = lambda sd: {k: v for k, v in sd.items()
                       if not k.startswith(('mfm', 'teacher.', 'imnet_model.'))}
    sd_plain, sd_mfm = keep(plain.state_dict()), keep(mfm.state_dict())
    assert sd_plain.keys() == sd_mfm.keys()
    for k in sd_plain:
        torch.testing.assert_close(sd_plain[k], sd_mfm[k])
    assert any(k.startswith('mfm_rebuilder.') for k in mfm.state_dict())
    plain.eval()
    mfm.eval()
    batch = fake_batch(seed=5)
    val = dict(inputs=batch['target_inputs'], data_samples=batch['target_data_samples'])
    with torch.no_grad():
        out_plain = plain.test_step(copy.deepcopy(val))
        out_mfm = mfm.test_step(copy.deepcopy(val))
    for a, b in zip(out_plain, out_mfm):
        torch.testing.assert_close(a.seg_logits.data, b.seg_logits.data)
        assert torch.equal(a.pred_sem_seg.data, b.pred_sem_seg.data)
    # same parameters and FLOPs on the inference path: the rebuilder is not in it
    used_plain, used_mfm = _inference_params(plain), _inference_params(mfm)
    assert used_plain == used_mfm and used_plain
    assert not any(n.startswith('mfm') for n in used_mfm)
    count = lambda m, names: sum(p.numel() for n, p in m.named_parameters() if n in names)
    assert count(plain, used_plain) == count(mfm, used_mfm)
    x = torch.randn(1, 3, 32, 32)
    flops = []
    for m in (plain, mfm):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            m._forward(x)
        flops.append(counter.get_total_flops())
    assert flops[0] == flops[1] > 0


def test_train_step_with_mfm_logs_and_optimises_the_rebuilder():
    model = build_dacs(mfm=MFM, pseudo_threshold=0.0)
    model.train()
    built = build_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1),
        constructor='mmmask.UDAOptimWrapperConstructor'))
    in_optim = {id(p) for g in built.optimizer.param_groups for p in g['params']}
    assert in_optim == {id(p) for p in model.model.parameters()} | \
        {id(p) for p in model.mfm_rebuilder.parameters()}
    reb0 = [p.clone() for p in model.mfm_rebuilder.parameters()]
    log = model.train_step(fake_batch(), built)
    for key in ('decode.loss_ce', 'mix.decode.loss_ce', 'mfm.decode.loss_ce'):
        assert key in log
    assert float(log['loss']) == pytest.approx(
        sum(float(v) for k, v in log.items() if 'loss' in k and k != 'loss'), rel=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(reb0, model.mfm_rebuilder.parameters()))


def test_toy_config_builds_with_mfm():
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    cfg = Config.fromfile('configs/mfm/dacs-mfm_fcn-r18_toy-uda-64x64.py')
    assert cfg.model.type == 'mmmask.DACS' and cfg.model.mfm.on == 'target'
    model = MODELS.build(cfg.model)
    reb = model.mfm_rebuilder
    assert reb.levels == [model.model.decode_head.in_index]
    n_reb = sum(p.numel() for p in reb.parameters())
    n_student = sum(p.numel() for p in model.model.parameters())
    assert n_reb < 0.15 * n_student  # "lightweight"
