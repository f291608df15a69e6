"""The shared attention-bias mechanism: generic LogitBias kinds, BiasedSelfAttention, and the swap
into a built mmpretrain ViT (weights and keys unchanged, outputs identical without a bias)."""
import pytest
import torch
from torch import nn

from mmmask.models.layers import (BiasedSelfAttention, DenseBias, MaskedBias, MultiplicativeBias,
                                  ScaledBias, biased_softmax, swap_attention)


def reference_attention(attn: BiasedSelfAttention, x, transform):
    b, n, _ = x.shape
    q, k, v = attn.qkv(x).view(b, n, 3, attn.num_heads, attn.head_dims).permute(2, 0, 3, 1, 4)
    logits = transform((q @ k.transpose(-2, -1)) * attn.scale)
    out = (logits.softmax(-1).nan_to_num(0.0) @ v).transpose(1, 2).reshape(b, n, -1)
    return attn.proj(out)


class Provider(nn.Module):
    """Returns a fixed LogitBias and records what it was called with."""

    def __init__(self, bias):
        super().__init__()
        self.bias, self.calls = bias, []

    def forward(self, x, q, k, hw):
        self.calls.append((tuple(x.shape), tuple(q.shape), tuple(k.shape), hw))
        return self.bias


@pytest.mark.parametrize('kind', ['none', 'dense', 'mul', 'masked', 'scaled'])
@pytest.mark.parametrize('grad', [False, True])
def test_biased_self_attention_matches_reference(kind, grad):
    torch.manual_seed(0)
    n, heads = 17, 2  # 1 extra token + a 4x4 grid
    gain = torch.rand(heads, n, n) + 0.5
    bias_tensor = torch.randn(heads, n, n)
    keep = torch.rand(1, heads, n, n) > 0.6
    keep[..., 0, :] = False  # a fully masked row -> zeros, not NaN
    biases = dict(none=(None, lambda lg: lg), dense=(DenseBias(bias_tensor), lambda lg: lg + bias_tensor),
                  mul=(MultiplicativeBias(gain), lambda lg: lg * gain),
                  masked=(MaskedBias(keep), lambda lg: lg.masked_fill(~keep, float('-inf'))),
                  scaled=(ScaledBias(0.5), lambda lg: lg * 0.5))
    bias, transform = biases[kind]
    provider = Provider(bias)
    attn = BiasedSelfAttention(16, heads, bias_provider=provider, num_extra_tokens=1)
    x = torch.randn(2, n, 16, requires_grad=grad)
    with torch.set_grad_enabled(grad):
        out = attn(x)
        ref = reference_attention(attn, x, transform)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)
    assert provider.calls == [((2, n, 16), (2, heads, n, 8), (2, heads, n, 8), (4, 4))]
    if kind == 'masked':
        _, maps = attn.attention(x)
        assert torch.all(maps[:, :, 0] == 0) and torch.isfinite(maps).all()
    if grad:
        out.sum().backward()
        assert torch.isfinite(x.grad).all()


def test_grid_errors_and_head_dims():
    attn = BiasedSelfAttention(12, 3, head_dims=16)
    assert attn.qkv.out_features == 3 * 48 and attn.proj.in_features == 48
    with pytest.raises(ValueError, match='pass hw'):
        attn.grid(10, None)
    assert attn.grid(10, (2, 5)) == (2, 5)
    with pytest.raises(ValueError, match='head_dims'):
        BiasedSelfAttention(10, 3)
    with pytest.raises(TypeError, match='bool'):
        MaskedBias(torch.ones(2, 2))


def test_biased_softmax_inplace_path_equals_autograd_path():
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 5, 5)
    bias = MultiplicativeBias(torch.rand(2, 5, 5))
    with torch.no_grad():
        fast = biased_softmax(logits, bias)
    slow = biased_softmax(logits.clone().requires_grad_(), bias)
    torch.testing.assert_close(fast, slow.detach())


def test_swap_attention_into_mmpretrain_vit_keeps_keys_and_outputs():
    from mmpretrain.models import VisionTransformer
    torch.manual_seed(0)
    vit = VisionTransformer(arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                                      feedforward_channels=64), img_size=32, patch_size=8,
                            drop_path_rate=0.1)
    vit.eval()  # (mmpretrain's ViT.train() returns None)
    x = torch.randn(2, 3, 32, 32)
    keys = list(vit.state_dict())
    with torch.no_grad():
        before = vit(x)[0]
    made = []
    assert swap_attention(vit, lambda i, old: made.append(i)) == 2
    assert made == [0, 1]
    assert list(vit.state_dict()) == keys
    assert all(isinstance(layer.attn, BiasedSelfAttention) for layer in vit.layers)
    assert vit.layers[1].attn.out_drop is not None and vit.layers[1].attn.num_extra_tokens == 1
    with torch.no_grad():
        torch.testing.assert_close(vit(x)[0], before)
    # a provider that scales the logits changes the output (the bias is really applied)
    for layer in vit.layers:
        layer.attn.bias_provider = Provider(ScaledBias(3.0))
    with torch.no_grad():
        assert not torch.allclose(vit(x)[0], before)
    assert vit.layers[0].attn.bias_provider.calls[0][3] == (4, 4)
