"""Put an attention-bias provider on the attention layers of an upstream (mmpretrain) backbone.

``dict(type='mmmask.WithAttentionBias', backbone=dict(type='mmpretrain.SwinTransformer', ...),
bias_provider=dict(type='mmmask.GaussianMixtureMask', num_kernels=5))`` builds the upstream
backbone and swaps its attention modules for biased ones **with the same parameter names**, so
upstream checkpoints load unchanged (only the providers' own parameters, under
``...bias_provider.*``, are new). It is a *factory*: the object it returns is the upstream backbone
itself (its class, outputs, ``out_indices`` and keys), so no ``backbone.`` prefix is added.

Supported attention modules:

* mmpretrain ``MultiheadAttention`` (``VisionTransformer``, DeiT, ...): swapped by the shared
  :func:`mmmask.models.layers.swap_attention` for :class:`BiasedSelfAttention` (the provider sees
  the patch grid; leading extra tokens such as CLS are outside the grid).
* mmpretrain ``WindowMSA`` (inside ``ShiftWindowMSA`` of ``SwinTransformer``): swapped for
  :class:`BiasedWindowMSA`, whose provider sees the ``window_size`` grid; as in the official GMM
  Swin (``models/swin.py``), the bias is applied to the scaled window logits **before** the relative
  position bias and the shift mask are added.

The wrapper knows nothing about the providers: missing constructor arguments named ``num_heads``,
``embed_dims``, ``head_dims`` or ``grid`` are filled in from each attention layer (the window size
for window attention, the patch grid for a ViT) when the provider class accepts them.
"""
import copy
import inspect
from typing import Callable, Optional, Sequence, Tuple, Union

from torch import Tensor, nn

from ...registry import MODELS
from ..layers.attention_bias import LogitBias
from ..layers.biased_attention import swap_attention

__all__ = ['WithAttentionBias', 'BiasedWindowMSA', 'swap_window_attention', 'provider_factory']

ProviderSpec = Union[None, dict, Callable[[int, nn.Module], Optional[nn.Module]]]


def provider_factory(cfg: ProviderSpec, grid: Optional[Tuple[int, int]] = None,
                     layer_indices: Optional[Sequence[int]] = None
                     ) -> Callable[[int, nn.Module], Optional[nn.Module]]:
    """A callable ``f(layer_index, attn) -> provider`` (None: plain attention on that layer).

    ``cfg`` is a ``MODELS`` config (built once per layer, with ``num_heads`` / ``embed_dims`` /
    ``head_dims`` / ``grid`` filled from ``attn`` and ``grid`` when the provider takes them and
    the config does not set them) or already such a callable. ``layer_indices`` restricts the
    providers to those attention layers (in module order).
    """
    def build(index: int, attn: nn.Module) -> Optional[nn.Module]:
        if cfg is None or (layer_indices is not None and index not in layer_indices):
            return None
        if callable(cfg) and not isinstance(cfg, dict):
            return cfg(index, attn)
        layer_cfg = copy.deepcopy(cfg)
        cls = MODELS.get(layer_cfg['type']) if isinstance(layer_cfg['type'], str) \
            else layer_cfg['type']
        if cls is None:
            raise KeyError(f"bias provider type {layer_cfg['type']!r} is not registered in "
                           'mmmask MODELS (import the module that defines it)')
        params = inspect.signature(cls).parameters
        window = getattr(attn, 'window_size', None)
        context = dict(num_heads=attn.num_heads, embed_dims=attn.embed_dims,
                       head_dims=getattr(attn, 'head_dims', attn.embed_dims // attn.num_heads),
                       grid=tuple(window) if window is not None else grid)
        for name, value in context.items():
            if name in params and name not in layer_cfg and value is not None:
                layer_cfg[name] = value
        return MODELS.build(layer_cfg)
    return build


def _window_msa_class():
    from mmpretrain.models.utils.attention import WindowMSA
    return WindowMSA


class BiasedWindowMSA(_window_msa_class()):
    """mmpretrain ``WindowMSA`` with a logit-bias provider (same parameter names).

    Logits: ``((s·Q) Kᵀ ⊕ B) + relative position bias (+ shift mask)``, then softmax and the
    bias's ``finalize`` — the order of the official GMM Swin. The provider is called as
    ``provider(x=x, q=q, k=k, hw=window_size)`` (``q`` unscaled).
    """

    def __init__(self, embed_dims: int, window_size: Tuple[int, int], num_heads: int,
                 qkv_bias: bool = True, qk_scale: Optional[float] = None, attn_drop: float = 0.,
                 proj_drop: float = 0., bias_provider: Union[None, dict, nn.Module] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(embed_dims, window_size, num_heads, qkv_bias, qk_scale, attn_drop,
                         proj_drop, init_cfg)
        if isinstance(bias_provider, dict):
            bias_provider = MODELS.build(bias_provider)
        self.bias_provider = bias_provider

    def attention(self, x: Tensor, mask: Optional[Tensor] = None,
                  bias: Optional[LogitBias] = None) -> Tuple[Tensor, Tensor]:
        """``(output, attention map)``; ``bias`` overrides the provider (analysis tools)."""
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(
            2, 0, 3, 1, 4)
        if bias is None and self.bias_provider is not None:
            bias = self.bias_provider(x=x, q=q, k=k, hw=tuple(self.window_size))
        attn = (q * self.scale) @ k.transpose(-2, -1)
        if bias is not None:
            attn = bias.apply(attn)
        wh, ww = self.window_size
        rel = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(
            wh * ww, wh * ww, -1).permute(2, 0, 1)
        attn = attn + rel.unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = (attn.view(b // nw, nw, self.num_heads, n, n) +
                    mask.unsqueeze(1).unsqueeze(0)).view(-1, self.num_heads, n, n)
        attn = self.softmax(attn)
        if bias is not None:
            attn = bias.finalize(attn)
        out = (self.attn_drop(attn) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(out)), attn

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        return self.attention(x, mask)[0]


def swap_window_attention(model: nn.Module, bias_provider: ProviderSpec) -> int:
    """Replace every mmpretrain ``WindowMSA`` in ``model`` by a :class:`BiasedWindowMSA` with the
    same weights and keys; ``bias_provider`` as in :func:`provider_factory` (a config is built
    per layer). Returns the number of swapped layers."""
    window_msa = _window_msa_class()
    factory = provider_factory(bias_provider)
    targets = [(name, m) for name, m in model.named_modules()
               if type(m) is window_msa]  # noqa: E721 (subclasses such as V2 differ)
    for index, (name, old) in enumerate(targets):
        new = BiasedWindowMSA(old.embed_dims, tuple(old.window_size), old.num_heads,
                              qkv_bias=old.qkv.bias is not None, qk_scale=old.scale,
                              attn_drop=old.attn_drop.p, proj_drop=old.proj_drop.p,
                              bias_provider=factory(index, old))
        missing, unexpected = new.load_state_dict(old.state_dict(), strict=False)
        assert not unexpected and all(k.startswith('bias_provider.') for k in missing), \
            (missing, unexpected)
        new.to(old.qkv.weight.device, old.qkv.weight.dtype)
        parent = model.get_submodule(name.rpartition('.')[0]) if '.' in name else model
        setattr(parent, name.rpartition('.')[2], new)
    return len(targets)


def WithAttentionBias(backbone: dict, bias_provider: ProviderSpec,
                      layer_indices: Optional[Sequence[int]] = None, **overrides) -> nn.Module:
    """Build ``backbone`` (any registry scope, e.g. ``'mmpretrain.VisionTransformer'``) and put
    ``bias_provider`` on its attention layers (see the module docstring).

    Args:
        backbone: the upstream backbone config.
        bias_provider: a provider config (``MODELS``, mmmask scope), a callable
            ``f(layer_index, attn) -> provider`` or None (attention swapped, no bias).
        layer_indices: only these attention layers (module order) get a provider.
        **overrides: merged into ``backbone`` (e.g. ``out_indices`` or ``init_cfg``, so that the
            wrapper takes the usual backbone arguments).

    Returns the upstream backbone with ``attention_bias`` set to ``dict(provider=..., swapped=n)``.
    Raises ``TypeError`` when the backbone has no supported attention module.
    """
    cfg = dict(copy.deepcopy(backbone), **overrides)
    model = MODELS.build(cfg)
    grid = getattr(model, 'patch_resolution', None)
    factory = provider_factory(bias_provider, tuple(grid) if grid is not None else None,
                               layer_indices)
    swapped = swap_window_attention(model, factory)
    if not swapped:
        swapped = swap_attention(model, factory)
    if not swapped:
        raise TypeError(f"{cfg['type']} has no mmpretrain MultiheadAttention or WindowMSA to put "
                        'an attention bias on')
    model.attention_bias = dict(provider=copy.deepcopy(bias_provider)
                                if isinstance(bias_provider, dict) else bias_provider,
                                swapped=swapped)
    return model


MODELS.register_module(name='WithAttentionBias', module=WithAttentionBias)
