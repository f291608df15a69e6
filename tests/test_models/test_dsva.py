"""dSVA (ICCV 2025, arXiv 2506.21046): generator architecture (the released ``GeneratorResnet``
layout), L-inf projection, the dual feature/attention similarity losses and the DSVAAttack model
(frozen teachers, gradients into the generator only)."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmmask.models.attacks.dsva import (DSVAAttack, DSVAResNetGenerator, attention_similarity,
                                        cls_attention, dsva_loss, global_feature_similarity,
                                        local_feature_similarity, project_linf)

pytestmark = pytest.mark.usefixtures('mmpretrain_scope')

TINY_VIT = dict(type='mmpretrain.VisionTransformer',
                arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64),
                img_size=32, patch_size=8, out_type='raw', with_cls_token=True)


def _teacher(**kw):
    return dict(dict(model=TINY_VIT, feature_layers=['layers.0', 'layers.1'],
                     attention_layers=['layers.1.attn']), **kw)


# ------------------------------------------------------------------------------ projection
def test_project_linf_bounds_and_exact_values():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 8, 8)
    unres = torch.rand(4, 3, 8, 8)
    eps = 10 / 255
    adv = project_linf(unres, x, eps)
    assert (adv - x).abs().max() <= eps + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1
    # by the formula: clip(x + clip(u - x, -eps, eps), 0, 1)
    expected = torch.clamp(x + torch.clamp(unres - x, -eps, eps), 0, 1)
    torch.testing.assert_close(adv, expected)
    # inside the ball: unchanged; far above / below: exactly x +- eps (where the range allows)
    inside = x + 0.5 * eps * torch.sign(torch.randn_like(x))
    torch.testing.assert_close(project_linf(inside.clamp(0, 1), x, eps), inside.clamp(0, 1))
    up = project_linf(torch.full_like(x, 5.), x, eps)
    torch.testing.assert_close(up, torch.clamp(x + eps, 0, 1))
    down = project_linf(torch.full_like(x, -5.), x, eps)
    torch.testing.assert_close(down, torch.clamp(x - eps, 0, 1))
    # other pixel ranges
    adv2 = project_linf(unres * 4 - 2, x, 0.3, clip_min=-0.1, clip_max=0.9)
    assert adv2.min() >= -0.1 and adv2.max() <= 0.9 and (adv2 - x).abs().max() <= 0.3 + 1e-6
    with pytest.raises(ValueError):
        project_linf(unres, x, -1.)


# ------------------------------------------------------------------------------ losses
def test_global_and_local_similarity_formulas():
    torch.manual_seed(0)
    a, b = torch.randn(3, 5, 7), torch.randn(3, 5, 7)
    g = global_feature_similarity(a, b)
    manual = torch.stack([(a[i].flatten() @ b[i].flatten()) /
                          (a[i].norm() * b[i].norm()) for i in range(3)]).mean()
    torch.testing.assert_close(g, manual)
    loc = local_feature_similarity(a, b)
    manual_l = torch.stack([torch.stack([(a[i, n] @ b[i, n]) / (a[i, n].norm() * b[i, n].norm())
                                         for n in range(5)]) for i in range(3)]).mean()
    torch.testing.assert_close(loc, manual_l)
    assert math.isclose(float(global_feature_similarity(a, a)), 1.0, abs_tol=1e-6)
    assert math.isclose(float(local_feature_similarity(a, -a)), -1.0, abs_tol=1e-6)
    # global and local differ: scaling one token changes local sim of nothing, global a lot
    c = a.clone()
    c[:, 0] *= 100
    assert math.isclose(float(local_feature_similarity(a, c)), 1.0, abs_tol=1e-6)
    assert float(global_feature_similarity(a, c)) < 0.99 or a.shape[1] == 1
    # [B, C, H, W] maps are treated as [B, HW, C] tokens
    m1, m2 = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    torch.testing.assert_close(local_feature_similarity(m1, m2),
                               local_feature_similarity(m1.flatten(2).transpose(1, 2),
                                                        m2.flatten(2).transpose(1, 2)))


def test_cls_attention_matches_manual_softmax():
    from mmpretrain.models.utils import MultiheadAttention
    torch.manual_seed(0)
    attn = MultiheadAttention(embed_dims=16, num_heads=4)
    x = torch.randn(2, 5, 16)
    got = cls_attention(x, attn)
    qkv = attn.qkv(x).reshape(2, 5, 3, 4, 4).permute(2, 0, 3, 1, 4)
    logits = qkv[0] @ qkv[1].transpose(-2, -1) / 2.0  # head_dims 4 -> scale 1/2
    full = logits.softmax(-1)[:, :, 0]  # CLS query, [B, heads, N]
    torch.testing.assert_close(got, full[..., 1:].mean(1))
    assert got.shape == (2, 4)
    assert torch.all(got.sum(1) < 1) and torch.all(got > 0)
    with pytest.raises(TypeError, match='qkv'):
        cls_attention(x, nn.Linear(16, 16))
    a = torch.rand(3, 6)
    assert math.isclose(float(attention_similarity(a, a)), 1.0, abs_tol=1e-6)


def test_dsva_loss_weights_and_terms():
    torch.manual_seed(0)
    f = [torch.randn(2, 5, 8) for _ in range(2)]
    g = [torch.randn(2, 5, 8) for _ in range(2)]
    at, ag = [torch.rand(2, 4)], [torch.rand(2, 4)]
    out = dsva_loss(f, g, f, g, at, ag, cl_weight=2.0, mim_weight=0.5, attn_weight=3.0)
    cl = (global_feature_similarity(f[0], g[0]) + global_feature_similarity(f[1], g[1])) / 2
    mim = (local_feature_similarity(f[0], g[0]) + local_feature_similarity(f[1], g[1])) / 2
    torch.testing.assert_close(out['loss_cl'], 2.0 * cl)
    torch.testing.assert_close(out['loss_mim'], 0.5 * mim)
    torch.testing.assert_close(out['loss_attn'], 3.0 * attention_similarity(at[0], ag[0]))
    assert set(dsva_loss(f, g, [], [], attn_weight=0.).keys()) == {'loss_cl'}
    with pytest.raises(ValueError):
        dsva_loss([], [], [], [])
    with pytest.raises(ValueError):
        dsva_loss(f, g[:1], [], [])


# ------------------------------------------------------------------------------ generator
def test_generator_layout_matches_released_checkpoint_keys():
    gen = DSVAResNetGenerator()  # ngf 64, 6 blocks: the released dSVA / CDA / BIA generator
    keys = set(gen.state_dict())
    expected = {'block1.1.weight', 'block1.2.running_var', 'block2.0.weight', 'block3.1.bias',
                'resblock1.block.1.weight', 'resblock1.block.2.weight',
                'resblock6.block.6.weight', 'resblock6.block.7.running_mean',
                'upsampl1.0.weight', 'upsampl2.1.weight', 'blockf.1.weight', 'blockf.1.bias'}
    assert expected <= keys
    assert gen.state_dict()['block1.1.weight'].shape == (64, 3, 7, 7)
    assert gen.state_dict()['resblock3.block.1.weight'].shape == (256, 256, 3, 3)
    assert gen.state_dict()['upsampl1.0.weight'].shape == (256, 128, 3, 3)
    assert not any(k.startswith('resblock7') for k in keys)
    # a released-style state_dict loads strictly
    gen.load_state_dict(DSVAResNetGenerator().state_dict(), strict=True)
    small = DSVAResNetGenerator(ngf=8, num_blocks=2).eval()
    y = small(torch.rand(2, 3, 32, 32))
    assert y.shape == (2, 3, 32, 32) and y.min() >= 0 and y.max() <= 1
    incep = DSVAResNetGenerator(ngf=8, num_blocks=1, inception=True).eval()
    assert incep(torch.rand(1, 3, 300, 300)).shape == (1, 3, 299, 299)
    with pytest.raises(ValueError, match='divisible by 4'):
        small(torch.rand(1, 3, 30, 30))


# ------------------------------------------------------------------------------ model
def test_dsva_attack_loss_trains_only_the_generator():
    torch.manual_seed(0)
    model = DSVAAttack(generator=dict(type='mmmask.DSVAResNetGenerator', ngf=8, num_blocks=1),
                       cl_teacher=_teacher(), mim_teacher=_teacher(), eps=8 / 255)
    model.init_weights()
    model.train()
    assert not model.cl_teacher.training and not model.mim_teacher.training
    assert model.generator.training
    x = torch.rand(2, 3, 32, 32)
    losses = model.loss(x)
    assert set(losses) == {'loss_cl', 'loss_mim', 'loss_attn', 'linf'}
    for k in ('loss_cl', 'loss_mim', 'loss_attn'):
        assert -1 <= float(losses[k].detach()) <= 1
    assert float(losses['linf']) <= 8 / 255 + 1e-6
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    assert model.generator.blockf[1].weight.grad.abs().sum() > 0
    for t in (model.cl_teacher, model.mim_teacher):
        assert all(p.grad is None and not p.requires_grad for p in t.parameters())
    # tensor / predict modes: eps-bounded adversarial images
    model.eval()
    adv = model(x, mode='tensor')
    assert adv.shape == x.shape and (adv - x).abs().max() <= 8 / 255 + 1e-6
    samples = model(x, mode='predict')
    assert samples[0].adv_img.shape == (3, 32, 32) and samples[0].linf <= 8 / 255 + 1e-6


def test_dsva_attack_single_teacher_and_errors(tmp_path):
    model = DSVAAttack(generator=dict(type='mmmask.DSVAResNetGenerator', ngf=8, num_blocks=1),
                       mim_teacher=_teacher(attention_layers=[]))
    assert model.cl_teacher is None
    assert set(model.loss(torch.rand(1, 3, 32, 32))) == {'loss_mim', 'linf'}
    with pytest.raises(ValueError, match='teacher'):
        DSVAAttack()
    with pytest.raises(KeyError, match='no submodule'):
        DSVAAttack(cl_teacher=_teacher(feature_layers=['layers.9']))
    with pytest.raises(ValueError, match='eps'):
        DSVAAttack(cl_teacher=_teacher(), eps=10)
    # teacher checkpoints (with a prefix) are loaded in init_weights; a mismatching one fails
    from mmmask.registry import MODELS
    vit = MODELS.build(TINY_VIT)
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in vit.state_dict().items()}},
               tmp_path / 't.pth')
    m = DSVAAttack(cl_teacher=_teacher(pretrained=str(tmp_path / 't.pth'),
                                       pretrained_prefix='backbone.'))
    m.init_weights()
    torch.testing.assert_close(m.cl_teacher.model.layers[1].attn.qkv.weight,
                               vit.layers[1].attn.qkv.weight)
    bad = DSVAAttack(cl_teacher=_teacher(pretrained=str(tmp_path / 't.pth')))
    with pytest.raises(KeyError, match='prefix'):
        bad.init_weights()


def test_teacher_resizes_and_normalises():
    torch.manual_seed(0)
    model = DSVAAttack(generator=dict(type='mmmask.DSVAResNetGenerator', ngf=8, num_blocks=1),
                       cl_teacher=_teacher(input_size=(32, 32), mean=(0.5, 0.5, 0.5),
                                           std=(0.25, 0.25, 0.25)))
    model.eval()
    x = torch.rand(1, 3, 64, 64)
    feats, attns = model.cl_teacher(x)
    ref = model.cl_teacher.model((F.interpolate(x, size=(32, 32), mode='bilinear',
                                                align_corners=False) - 0.5) / 0.25)
    ref = ref[0] if isinstance(ref, tuple) else ref
    # the hooked block output, through the backbone's final norm, is the backbone output
    torch.testing.assert_close(model.cl_teacher.model.ln1(feats[-1]), ref)
    assert feats[0].shape == (1, 17, 32) and attns[0].shape == (1, 16)


def test_timm_layout_teacher_weights_load(tmp_path):
    """Official DINO / MAE ViT releases use timm key names; pretrained_format='timm' maps them."""
    from mmmask.models.attacks.dsva import timm_vit_to_mmpretrain
    from mmmask.registry import MODELS
    torch.manual_seed(1)
    vit = MODELS.build(TINY_VIT)
    inverse = {'patch_embed.projection.': 'patch_embed.proj.', 'ln1.': 'norm.'}
    timm_sd = {}
    for k, v in vit.state_dict().items():
        if k.startswith('layers.'):
            k = ('blocks.' + k[len('layers.'):]).replace('.ln1.', '.norm1.').replace(
                '.ln2.', '.norm2.').replace('.ffn.layers.0.0.', '.mlp.fc1.').replace(
                '.ffn.layers.1.', '.mlp.fc2.')
        else:
            for a, b in inverse.items():
                if k.startswith(a):
                    k = b + k[len(a):]
        timm_sd[k] = v
    timm_sd['head.weight'] = torch.zeros(3, 32)  # dropped
    assert set(timm_vit_to_mmpretrain(timm_sd)) == set(vit.state_dict())
    torch.save({'model': timm_sd}, tmp_path / 'mae_like.pth')
    m = DSVAAttack(mim_teacher=_teacher(pretrained=str(tmp_path / 'mae_like.pth'),
                                        pretrained_format='timm'))
    m.init_weights()
    for k, v in vit.state_dict().items():
        torch.testing.assert_close(m.mim_teacher.model.state_dict()[k], v)
    with pytest.raises(ValueError, match='pretrained_format'):
        DSVAAttack(cl_teacher=_teacher(pretrained_format='dino'))
