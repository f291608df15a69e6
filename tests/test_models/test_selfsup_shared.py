"""Shared pretraining pieces: MaskedViT (external masks, all layers), EMATeacher schedules,
AttentionRecorder, k-NN / linear probes and the probe hook."""
import math

import pytest
import torch
from mmengine.logging import MessageHub
from mmpretrain.models.backbones import VisionTransformer

import mmmask.models  # noqa: F401
from mmmask.evaluation.knn import (knn_accuracy, knn_classify, linear_probe_accuracy,
                                   pool_features)
from mmmask.models.masking import RandomMasking
from mmmask.models.selfsup import (AttentionRecorder, EMATeacher, MaskedViT, attention_probs,
                                   ema_decay)

ARCH = dict(embed_dims=32, num_layers=3, num_heads=4, feedforward_channels=64)


def vit(**kw):
    torch.manual_seed(0)
    m = MaskedViT(arch=ARCH, img_size=32, patch_size=8, **kw)
    m.init_weights()
    return m.eval()


def test_masked_vit_without_mask_is_the_plain_vit():
    model = vit()
    x = torch.randn(2, 3, 32, 32)
    out = model.forward_masked(x)
    assert len(out.hidden) == 3 and out.tokens.shape == (2, 17, 32)
    torch.testing.assert_close(out.tokens, model(x)[-1])
    # the state dict is mmpretrain's VisionTransformer one
    ref = VisionTransformer(arch=ARCH, img_size=32, patch_size=8)
    assert set(ref.state_dict()) == set(model.state_dict())
    # sin-cos pos embed is fixed (MAE) and cls gets a zero position
    assert not model.pos_embed.requires_grad and model.pos_embed[0, 0].abs().sum() == 0


def test_masked_vit_keeps_tokens_in_the_given_order():
    model = vit()
    x = torch.randn(2, 3, 32, 32)
    torch.manual_seed(1)
    sample = RandomMasking(0.5)(2, (4, 4))
    out = model.forward_masked(x, ids_keep=sample.ids_keep)
    assert out.tokens.shape == (2, 9, 32)
    # permuting the kept ids permutes the outputs (no positional re-sorting inside)
    perm = torch.tensor([7, 6, 5, 4, 3, 2, 1, 0])
    out2 = model.forward_masked(x, ids_keep=sample.ids_keep[:, perm])
    torch.testing.assert_close(out2.tokens[:, 1:], out.tokens[:, 1:][:, perm], atol=1e-5, rtol=1e-5)
    # the first block sees exactly the patch embeddings (+pos) of the kept tokens
    tokens, _, _ = model.embed(x)
    ref_in = torch.gather(tokens, 1, sample.ids_keep[..., None].expand(-1, -1, 32))
    captured = {}
    h = model.layers[0].register_forward_pre_hook(lambda m, a: captured.setdefault('x', a[0]))
    model.forward_masked(x, ids_keep=sample.ids_keep)
    h.remove()
    torch.testing.assert_close(captured['x'][:, 1:], ref_in)


def test_masked_vit_mask_token():
    model = vit(mask_token=True)
    x = torch.randn(1, 3, 32, 32)
    mask = torch.zeros(1, 16, dtype=torch.bool)
    mask[0, :5] = True
    tokens, _, _ = model.embed(x, mask)
    plain, _, _ = model.embed(x)
    pos = model.pos_embed[:, 1:]
    torch.testing.assert_close(tokens[0, :5], (model.mask_token[0] + pos[0, :5]).expand(5, -1))
    torch.testing.assert_close(tokens[0, 5:], plain[0, 5:])
    with pytest.raises(ValueError, match='mask_token=True'):
        vit().forward_masked(x, token_mask=mask)


def test_ema_teacher_update_and_schedules():
    student = torch.nn.Linear(3, 2)
    teacher = EMATeacher(student, decay=0.9)
    assert not any(p.requires_grad for p in teacher.parameters())
    before = teacher.module.weight.clone()
    with torch.no_grad():
        student.weight.add_(1.0)
    teacher.update(student)
    torch.testing.assert_close(teacher.module.weight, 0.9 * before + 0.1 * student.weight)
    teacher.train()
    assert not teacher.module.training
    hub = MessageHub.get_current_instance()
    hub.update_info('epoch', 50)
    assert math.isclose(ema_decay('hpm', 0.999, 0.9999), 0.999 + 0.0009 * 0.5)
    hub.update_info('epoch', 150)
    assert ema_decay('hpm', 0.999, 0.9999) == 0.9999
    hub.update_info('iter', 0)
    hub.update_info('max_iters', 100)
    assert math.isclose(ema_decay('cosine', 0.99, 1.0), 0.99)
    hub.update_info('iter', 100)
    assert math.isclose(ema_decay('cosine', 0.99, 1.0), 1.0)
    for k, v in (('epoch', 0), ('iter', 0), ('max_iters', 1)):
        hub.update_info(k, v)
    with pytest.raises(ValueError, match='unknown EMA schedule'):
        EMATeacher(student, schedule='step')


def test_attention_recorder_matches_manual_attention():
    model = vit()
    x = torch.randn(2, 3, 32, 32)
    inputs = {}
    h = model.layers[-1].attn.register_forward_pre_hook(lambda m, a: inputs.setdefault('x', a[0]))
    with AttentionRecorder(model.layers, indices=[-1]) as rec:
        out = model(x)[-1]
    h.remove()
    attn = rec.maps[-1]
    assert attn.shape == (2, 4, 17, 17) and rec.maps[2] is attn
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 4, 17))
    # recompute the block's attention output from the recorded probabilities
    mod = model.layers[-1].attn
    xin = inputs['x']
    v = mod.qkv(xin).reshape(2, 17, 3, 4, 8).permute(2, 0, 3, 1, 4)[2]
    y = mod.proj((attn @ v).transpose(1, 2).reshape(2, 17, 32))
    torch.testing.assert_close(y, mod(xin) - (xin if mod.v_shortcut else 0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model(x)[-1], out)  # hooks removed, output unchanged
    torch.testing.assert_close(attention_probs(mod, xin), attn)


def test_knn_and_linear_probe_on_separable_data():
    torch.manual_seed(0)
    centers = torch.randn(4, 16) * 3
    y_train, y_test = torch.randint(0, 4, (200, )), torch.randint(0, 4, (100, ))
    x_train = centers[y_train] + torch.randn(200, 16)
    x_test = centers[y_test] + torch.randn(100, 16)
    assert knn_accuracy(x_train, y_train, x_test, y_test, 4, k=10) > 95
    assert linear_probe_accuracy(x_train, y_train, x_test, y_test, 4, steps=200) > 95
    noise = torch.randn(100, 16)
    assert knn_accuracy(x_train, y_train, noise, y_test, 4) < 50
    assert knn_classify(x_train, y_train, x_train[:5], 4, k=1).tolist() == y_train[:5].tolist()


def test_pool_features():
    tokens = torch.arange(2 * 3 * 2, dtype=torch.float).view(2, 3, 2)
    assert torch.equal(pool_features((tokens, )), tokens[:, 1:].mean(1))
    assert torch.equal(pool_features(tokens, 'cls'), tokens[:, 0])
    assert torch.equal(pool_features(tokens, 'flatten'), tokens[:, 1:].flatten(1))
    fmap = torch.randn(2, 4, 3, 3)
    assert pool_features(fmap).shape == (2, 4)
    assert torch.equal(pool_features(fmap, 'flatten'), fmap.flatten(2).transpose(1, 2).flatten(1))
    with pytest.raises(ValueError, match='pool'):
        pool_features(tokens, 'max')
