"""Attention temperature: ``softmax(QKᵀ / (√d · T))`` (Gu, Tresp & Qin, "Are Vision Transformers
Robust to Patch Perturbations?", ECCV 2022, arXiv 2111.10659).

The paper finds that an adversarial patch pulls a ViT's attention onto itself; a temperature
``T > 1`` flattens every attention distribution, which limits how much one token can take. Here the
temperature is a bias provider of the shared attention-bias mechanism (``attention_bias.py``):
:class:`AttentionTemperature` returns :class:`ScaledBias` ``(1/T)`` on the already scaled logits
``QKᵀ/√d``. Three ways to use it:

* by config, at build time (trained / fine-tuned with ``T``)::

      backbone=dict(type='mmmask.WithAttentionBias',
                    backbone=dict(type='mmpretrain.VisionTransformer', arch='b', ...),
                    bias_provider=dict(type='mmmask.AttentionTemperature', temperature=2.0))

* at test time on any built model (mmpretrain ``VisionTransformer`` / DeiT, Swin, mmmask
  ``BiasedSelfAttention`` models): :func:`set_attention_temperature` (used by the
  ``tools/analysis_tools/patch_robustness.py`` tool);
* in a runner: ``custom_hooks = [dict(type='mmmask.AttentionTemperatureHook', temperature=2.0)]``
  sets ``T`` before validation / testing and puts the previous value back afterwards.

``T = 1`` makes the provider return ``None`` (the plain attention path, bit for bit), and on a
model whose attention has not been swapped yet ``T = 1`` changes nothing at all. The provider has no
parameters or buffers: checkpoints load unchanged.
"""
from typing import Dict, Optional, Sequence, Tuple

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import Tensor, nn

from mmmask.registry import HOOKS, MODELS
from .attention_bias import ScaledBias
from .biased_attention import BiasedSelfAttention, swap_attention

__all__ = ['AttentionTemperature', 'AttentionTemperatureHook', 'set_attention_temperature',
           'get_attention_temperatures', 'ensure_biased_attention']


@MODELS.register_module()
class AttentionTemperature(nn.Module):
    """Bias provider ``ScaledBias(1/T)``: attention ``softmax(QKᵀ / (√d·T))``.

    Args:
        temperature: ``T > 0``; ``T > 1`` flattens the attention (the paper's defence), ``T → ∞``
            gives uniform attention, ``T < 1`` sharpens it. ``T == 1`` returns ``None`` (no bias).
    """
    #: the temperature ignores the token layout: usable on any token set (no square grid needed)
    needs_grid = False

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = float(temperature)

    @property
    def temperature(self) -> float:
        return self._temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        value = float(value)
        if not value > 0:
            raise ValueError(f'attention temperature must be > 0, got {value}')
        self._temperature = value

    def forward(self, x: Optional[Tensor] = None, q: Optional[Tensor] = None,
                k: Optional[Tensor] = None, hw: Optional[Tuple[int, int]] = None
                ) -> Optional[ScaledBias]:
        if self._temperature == 1.0:
            return None
        return ScaledBias(1.0 / self._temperature)

    def extra_repr(self) -> str:
        return f'temperature={self._temperature}'


def _biased_window_class():
    try:
        from mmmask.models.backbones.with_attention_bias import BiasedWindowMSA
    except ImportError:  # pragma: no cover (mmpretrain missing)
        return None
    return BiasedWindowMSA


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model


def _biased_layers(model: nn.Module):
    window = _biased_window_class()
    kinds = (BiasedSelfAttention, ) + ((window, ) if window is not None else ())
    return [(n, m) for n, m in model.named_modules() if isinstance(m, kinds)]


def _swap_keeping_parameters(model: nn.Module, temperature: float) -> int:
    """Swap mmpretrain ``MultiheadAttention`` / ``WindowMSA`` for the biased modules, each with an
    :class:`AttentionTemperature`; the new modules take over the old ``qkv`` / ``proj`` (and
    relative-position table) **objects**, so an optimizer built before still updates them."""
    from mmpretrain.models.utils import MultiheadAttention
    from mmpretrain.models.utils.attention import WindowMSA

    from mmmask.models.backbones.with_attention_bias import swap_window_attention
    old = {n: m for n, m in model.named_modules()
           if isinstance(m, MultiheadAttention) or type(m) is WindowMSA}  # noqa: E721
    if not old:
        return 0
    def factory(index, attn):
        return AttentionTemperature(temperature)

    swapped = swap_window_attention(model, factory)
    # ViT backbones know their leading extra tokens (CLS, distillation): swap inside each one
    for sub in [m for m in model.modules() if hasattr(m, 'num_extra_tokens')]:
        swapped += swap_attention(sub, factory, num_extra_tokens=sub.num_extra_tokens)
    swapped += swap_attention(model, factory)
    for name, module in old.items():
        new = model.get_submodule(name)
        new.qkv, new.proj = module.qkv, module.proj
        if hasattr(module, 'relative_position_bias_table'):
            new.relative_position_bias_table = module.relative_position_bias_table
    return swapped


def ensure_biased_attention(model: nn.Module) -> int:
    """Swap the plain mmpretrain attention layers of ``model`` for biased ones at ``T = 1``
    (same weights, keys and parameter objects; needed to read attention maps). Numerically the
    same model up to float rounding (the python softmax path instead of fused SDPA). Returns the
    number of swapped layers."""
    return _swap_keeping_parameters(_unwrap(model), 1.0)


def set_attention_temperature(model: nn.Module, temperature: float,
                              swap: bool = True) -> int:
    """Set the attention temperature of every attention layer of a built model (in place).

    * biased layers (``BiasedSelfAttention``, ``BiasedWindowMSA``) without a provider get an
      :class:`AttentionTemperature`; those with one get its ``temperature`` set;
    * mmpretrain ``MultiheadAttention`` (ViT, DeiT) and ``WindowMSA`` (Swin) are swapped for the
      biased modules (same weights, keys and parameter objects) when ``swap`` and ``T != 1``; at
      ``T == 1`` they are left alone (the model is exactly the baseline).

    Returns the number of layers now at ``temperature``. Raises ``TypeError`` when a layer already
    has a different bias provider (compose it yourself) and ``ValueError`` when nothing in the
    model is an attention layer this function knows (e.g. a CNN).
    """
    model = _unwrap(model)
    temperature = float(temperature)
    if not temperature > 0:
        raise ValueError(f'attention temperature must be > 0, got {temperature}')
    count = 0
    for name, layer in _biased_layers(model):
        provider = layer.bias_provider
        if provider is None:
            layer.bias_provider = AttentionTemperature(temperature)
        elif isinstance(provider, AttentionTemperature):
            provider.temperature = temperature
        else:
            raise TypeError(f'{name} already has the bias provider {type(provider).__name__}; '
                            'set_attention_temperature only handles layers without a provider '
                            'or with mmmask.AttentionTemperature')
        count += 1
    if swap:
        from mmpretrain.models.utils import MultiheadAttention
        from mmpretrain.models.utils.attention import WindowMSA
        plain = sum(isinstance(m, MultiheadAttention) or type(m) is WindowMSA  # noqa: E721
                    for m in model.modules())
        if plain and temperature != 1.0:
            count += _swap_keeping_parameters(model, temperature)
        elif plain:
            count += plain  # T = 1 on the baseline attention: nothing to change
    if count == 0:
        raise ValueError(f'{type(model).__name__} has no attention layer to put a temperature on '
                         '(mmpretrain MultiheadAttention / WindowMSA or mmmask '
                         'BiasedSelfAttention); attention temperature applies to ViTs, not CNNs')
    return count


def get_attention_temperatures(model: nn.Module) -> Dict[str, float]:
    """``{layer name: T}`` of the biased attention layers (1.0 for those without a provider)."""
    out = {}
    for name, layer in _biased_layers(_unwrap(model)):
        provider = layer.bias_provider
        if provider is None:
            out[name] = 1.0
        elif isinstance(provider, AttentionTemperature):
            out[name] = provider.temperature
    return out


@HOOKS.register_module()
class AttentionTemperatureHook(Hook):
    """Evaluate with attention temperature ``T`` (Gu et al., ECCV 2022): set before validation /
    testing, the previous temperatures restored afterwards (training is not affected).

    The first application to a plain mmpretrain ViT swaps its attention modules for biased ones
    that keep the same parameter objects, so the optimizer still trains them.

    Args:
        temperature: ``T`` used in the phases below.
        phases: any of ``'val'``, ``'test'``.
    """

    priority = 'NORMAL'

    def __init__(self, temperature: float, phases: Sequence[str] = ('val', 'test')) -> None:
        bad = set(phases) - {'val', 'test'}
        if bad:
            raise ValueError(f'unknown phases {sorted(bad)}; use "val" and/or "test"')
        if not float(temperature) > 0:
            raise ValueError(f'attention temperature must be > 0, got {temperature}')
        self.temperature = float(temperature)
        self.phases = tuple(phases)
        self._saved: Optional[Dict[str, float]] = None

    def _apply(self, runner) -> None:
        model = _unwrap(runner.model)
        self._saved = get_attention_temperatures(model)
        count = set_attention_temperature(model, self.temperature)
        runner.logger.info(f'AttentionTemperatureHook: T={self.temperature} on {count} '
                           'attention layers')

    def _restore(self, runner) -> None:
        if self._saved is None:
            return
        model = _unwrap(runner.model)
        for name, layer in _biased_layers(model):
            provider = layer.bias_provider
            if isinstance(provider, AttentionTemperature):
                provider.temperature = self._saved.get(name, 1.0)
        self._saved = None

    def before_val(self, runner) -> None:
        if 'val' in self.phases:
            self._apply(runner)

    def after_val(self, runner) -> None:
        if 'val' in self.phases:
            self._restore(runner)

    def before_test(self, runner) -> None:
        if 'test' in self.phases:
            self._apply(runner)

    def after_test(self, runner) -> None:
        if 'test' in self.phases:
            self._restore(runner)
