"""Attention temperature (Gu, Tresp & Qin, ECCV 2022): softmax(QKᵀ / (√d·T)) as a bias provider,
on mmpretrain ViT / DeiT / Swin and through mmmask.WithAttentionBias; T = 1 is the baseline bit for
bit, large T flattens the attention; the hook sets T for val/test and restores it."""
import copy
import logging
from types import SimpleNamespace

import pytest
import torch

from mmmask.models.layers import (AttentionTemperature, AttentionTemperatureHook,
                                  BiasedSelfAttention, ScaledBias, ensure_biased_attention,
                                  set_attention_temperature)
from mmmask.models.layers.attention_temperature import get_attention_temperatures

pytestmark = pytest.mark.usefixtures('mmpretrain_scope')

ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)


def tiny_vit(**kw):
    from mmpretrain.models import VisionTransformer
    torch.manual_seed(0)
    vit = VisionTransformer(arch=ARCH, img_size=32, patch_size=8, **kw)
    vit.eval()
    return vit


def test_provider_returns_scaled_bias_and_none_at_one():
    assert AttentionTemperature(1.0)() is None
    bias = AttentionTemperature(4.0)(x=None, q=None, k=None, hw=(2, 2))
    assert isinstance(bias, ScaledBias) and bias.scale == 0.25
    with pytest.raises(ValueError, match='> 0'):
        AttentionTemperature(0.0)
    with pytest.raises(ValueError, match='> 0'):
        AttentionTemperature(2.0).temperature = -1
    assert list(AttentionTemperature(2.0).state_dict()) == []  # checkpoints load unchanged


@pytest.mark.parametrize('temperature', [0.5, 1.0, 3.0])
def test_biased_attention_with_temperature_is_the_formula(temperature):
    torch.manual_seed(0)
    attn = BiasedSelfAttention(16, 2, bias_provider=AttentionTemperature(temperature),
                               num_extra_tokens=1)
    x = torch.randn(2, 17, 16)
    out, maps = attn.attention(x)
    q, k, v = attn.qkv(x).view(2, 17, 3, 2, 8).permute(2, 0, 3, 1, 4)
    ref_maps = (q @ k.transpose(-2, -1) / (8**0.5 * temperature)).softmax(-1)
    ref = attn.proj((ref_maps @ v).transpose(1, 2).reshape(2, 17, 16))
    torch.testing.assert_close(maps, ref_maps, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)


def test_t1_is_bit_identical_on_mmpretrain_vit_and_with_attention_bias():
    from mmmask.registry import MODELS
    x = torch.randn(2, 3, 32, 32)
    vit = tiny_vit()
    with torch.no_grad():
        base = vit(x)[0]
    # T = 1 on the built mmpretrain ViT: nothing is swapped, the model is the baseline
    same = copy.deepcopy(vit)
    assert set_attention_temperature(same, 1.0) == 2
    assert type(same.layers[0].attn).__name__ == 'MultiheadAttention'
    with torch.no_grad():
        assert torch.equal(same(x)[0], base)
    # by config: WithAttentionBias + AttentionTemperature(1) == WithAttentionBias without provider
    cfg = dict(type='mmmask.WithAttentionBias',
               backbone=dict(type='mmpretrain.VisionTransformer', arch=ARCH, img_size=32,
                             patch_size=8))
    torch.manual_seed(0)
    with_t1 = MODELS.build(dict(cfg, bias_provider=dict(type='mmmask.AttentionTemperature',
                                                        temperature=1.0)))
    torch.manual_seed(0)
    plain = MODELS.build(dict(cfg, bias_provider=None))
    with_t1.eval()  # (mmpretrain's ViT.train() returns None)
    plain.eval()
    assert list(with_t1.state_dict()) == list(vit.state_dict())  # same keys as upstream
    with_t1.load_state_dict(vit.state_dict())
    plain.load_state_dict(vit.state_dict())
    with torch.no_grad():
        out_t1 = with_t1(x)[0]
        assert torch.equal(out_t1, plain(x)[0])
        # vs the fused-SDPA upstream attention: the same up to float rounding
        torch.testing.assert_close(out_t1, base, atol=1e-5, rtol=1e-5)
    # after a detour through T = 3, T = 1 is the swapped-plain model again, bit for bit
    set_attention_temperature(with_t1, 3.0)
    with torch.no_grad():
        assert not torch.allclose(with_t1(x)[0], out_t1, atol=1e-4)
    set_attention_temperature(with_t1, 1.0)
    with torch.no_grad():
        assert torch.equal(with_t1(x)[0], out_t1)


def _uniformity(model, x):
    from mmmask.evaluation.robustness.patch_robustness import AttentionRecorder
    with torch.no_grad(), AttentionRecorder(model) as rec:
        model(x)
    maps = torch.stack(rec.maps)  # layers, B, heads, N, N
    return float((maps - 1.0 / maps.shape[-1]).abs().max()), maps


def test_large_temperature_gives_uniform_attention_on_deit():
    from mmpretrain.models import DistilledVisionTransformer
    torch.manual_seed(0)
    deit = DistilledVisionTransformer(arch=ARCH, img_size=32, patch_size=8)
    deit.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        base = deit(x)[0][0]
    assert set_attention_temperature(deit, 1e6) == 2
    assert all(isinstance(layer.attn, BiasedSelfAttention) for layer in deit.layers)
    assert deit.layers[0].attn.num_extra_tokens == 2  # CLS + distillation token
    gap_hot, maps = _uniformity(deit, x)
    assert maps.shape[-1] == 2 + 16
    assert gap_hot < 1e-4  # near-uniform: every key gets 1/N
    set_attention_temperature(deit, 1.0)
    gap_one, _ = _uniformity(deit, x)
    set_attention_temperature(deit, 4.0)
    gap_four, _ = _uniformity(deit, x)
    assert gap_one > gap_four > gap_hot  # higher T, flatter attention
    set_attention_temperature(deit, 1.0)
    with torch.no_grad():
        torch.testing.assert_close(deit(x)[0][0], base, atol=1e-5, rtol=1e-5)


def test_swap_keeps_parameter_objects_and_keys():
    vit = tiny_vit()
    keys = list(vit.state_dict())
    weight = vit.layers[1].attn.qkv.weight
    opt = torch.optim.SGD(vit.parameters(), lr=0.1)
    assert ensure_biased_attention(vit) == 2
    assert vit.layers[1].attn.qkv.weight is weight  # the optimizer still owns it
    assert list(vit.state_dict()) == keys
    assert get_attention_temperatures(vit) == {'layers.0.attn': 1.0, 'layers.1.attn': 1.0}
    set_attention_temperature(vit, 2.0)
    vit.train()
    (vit(torch.randn(2, 3, 32, 32))[0] * torch.randn(2, 32)).sum().backward()
    before = weight.detach().clone()
    opt.step()
    assert not torch.equal(weight.detach(), before)


def test_swin_window_attention_and_errors():
    from mmpretrain.models import ResNet, SwinTransformer
    torch.manual_seed(0)
    swin = SwinTransformer(arch=dict(embed_dims=16, depths=[2], num_heads=[2]), img_size=32,
                           window_size=4, out_indices=(0, ))
    swin.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        base = swin(x)[0]
    assert set_attention_temperature(swin, 1.0) == 2
    with torch.no_grad():
        assert torch.equal(swin(x)[0], base)
    assert set_attention_temperature(swin, 3.0) == 2
    assert set(get_attention_temperatures(swin).values()) == {3.0}
    with torch.no_grad():
        assert not torch.allclose(swin(x)[0], base, atol=1e-4)
    with pytest.raises(ValueError, match='not CNNs'):
        set_attention_temperature(ResNet(18), 2.0)
    attn = BiasedSelfAttention(16, 2, bias_provider=torch.nn.Identity())
    with pytest.raises(TypeError, match='already has the bias provider'):
        set_attention_temperature(torch.nn.Sequential(attn), 2.0)


def test_hook_sets_temperature_for_test_and_restores_it():
    from mmmask.registry import HOOKS
    hook = HOOKS.build(dict(type='mmmask.AttentionTemperatureHook', temperature=5.0))
    assert isinstance(hook, AttentionTemperatureHook)
    vit = tiny_vit()
    runner = SimpleNamespace(model=vit, logger=logging.getLogger('test'))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        base = vit(x)[0]
    hook.before_test(runner)
    assert set(get_attention_temperatures(vit).values()) == {5.0}
    gap_hot, _ = _uniformity(vit, x)
    hook.after_test(runner)
    assert set(get_attention_temperatures(vit).values()) == {1.0}
    assert _uniformity(vit, x)[0] > 2 * gap_hot
    with torch.no_grad():
        torch.testing.assert_close(vit(x)[0], base, atol=1e-5, rtol=1e-5)
    # validation only when asked for
    val_only = AttentionTemperatureHook(3.0, phases=('test', ))
    val_only.before_val(runner)
    assert set(get_attention_temperatures(vit).values()) == {1.0}
    with pytest.raises(ValueError, match='unknown phases'):
        AttentionTemperatureHook(2.0, phases=('train', ))
