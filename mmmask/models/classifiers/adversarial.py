"""FGSM adversarial training with a random start ("fast adversarial training", Wong, Rice &
Kolter, ICLR 2020), as used by the Brain-Score 2022 dual-stream CrossViT recipe
(github.com/williamberrios/BrainScore-Transformers, ``Fast-Adversarial-Training/Code/train_adv.py``).

Per batch: ``δ ~ U(−ε, ε)`` in pixel space; ``g = ∇_δ L(f(norm(clip(x + δ))))``;
``δ ← clip_ε(δ + α·sign(g))``; the training step then uses ``norm(clip(x + δ))``, where ``clip``
keeps the image in its value range and ``norm`` is the data preprocessor's normalisation.
"""
from typing import List, Optional, Tuple

import torch
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.structures import DataSample
from torch import Tensor

from ...registry import MODELS

__all__ = ['AdversarialImageClassifier']


@MODELS.register_module()
class AdversarialImageClassifier(ImageClassifier):
    """mmpretrain ``ImageClassifier`` that trains on FGSM examples (random start).

    The attack runs inside :meth:`loss` (so it also works under ``MMDistributedDataParallel``,
    which bypasses ``train_step`` overrides), on the batch the data preprocessor produced
    (after batch augments such as Mixup, whose soft labels the attack loss uses). The normalised
    batch is mapped back to pixels with the preprocessor's ``mean``/``std``.

    Args:
        eps: L∞ radius as a fraction of the value range (recipe: 2/255).
        alpha: FGSM step, same unit (recipe: 2.5/255).
        random_start: draw ``δ ~ U(−eps, eps)`` per batch (recipe: True); False starts at 0
            (plain FGSM).
        adv_ratio: fraction of each batch replaced by its adversarial version (a random subset;
            recipe: 1.0, i.e. adversarial examples only). 0 trains on clean images only.
        value_range: pixel range of the un-normalised images (mmpretrain: 0-255 uint8).
        **kwargs: ``ImageClassifier`` arguments (backbone, neck, head, data_preprocessor, ...).
    """

    def __init__(self, *args, eps: float = 2 / 255, alpha: float = 2.5 / 255,
                 random_start: bool = True, adv_ratio: float = 1.0,
                 value_range: Tuple[float, float] = (0., 255.), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if eps < 0 or alpha < 0:
            raise ValueError(f'eps={eps} and alpha={alpha} must be >= 0 (fractions of the '
                             'value range, e.g. 2/255)')
        if not 0 <= adv_ratio <= 1:
            raise ValueError(f'adv_ratio={adv_ratio} must be in [0, 1]')
        if value_range[1] <= value_range[0]:
            raise ValueError(f'value_range={value_range} must be (low, high) with low < high')
        self.eps, self.alpha = eps, alpha
        self.random_start, self.adv_ratio = random_start, adv_ratio
        self.value_range = tuple(float(v) for v in value_range)

    def _normalisation(self, inputs: Tensor) -> Tuple[Tensor, Tensor]:
        pre = self.data_preprocessor
        if getattr(pre, '_enable_normalize', False):
            return pre.mean.to(inputs), pre.std.to(inputs)
        one = inputs.new_ones(())
        return one * 0, one

    def _attack_loss(self, inputs: Tensor, data_samples: List[DataSample]) -> Tensor:
        losses = super().loss(inputs, data_samples)
        return sum(v.mean() for k, v in losses.items() if 'loss' in k)

    def adversarial_examples(self, inputs: Tensor,
                             data_samples: List[DataSample]) -> Tensor:
        """The normalised FGSM (random-start) version of a normalised batch.

        Every returned image, in pixels, lies within ``eps·(high − low)`` of the input and within
        ``value_range``.
        """
        mean, std = self._normalisation(inputs)
        low, high = self.value_range
        scale = high - low
        eps, alpha = self.eps * scale, self.alpha * scale
        pixels = (inputs.detach() * std + mean).clamp(low, high)
        if self.random_start:
            delta = torch.empty_like(pixels).uniform_(-eps, eps)
        else:
            delta = torch.zeros_like(pixels)
        with torch.enable_grad():
            delta.requires_grad_(True)
            adv = ((pixels + delta).clamp(low, high) - mean) / std
            loss = self._attack_loss(adv, data_samples)
            grad, = torch.autograd.grad(loss, delta)
        delta = (delta.detach() + alpha * grad.sign()).clamp(-eps, eps)
        return (((pixels + delta).clamp(low, high) - mean) / std).detach()

    def training_inputs(self, inputs: Tensor, data_samples: List[DataSample]) -> Tensor:
        """The batch the training loss sees: a random ``adv_ratio`` share of it replaced by
        adversarial examples (all of it by default)."""
        n = inputs.shape[0]
        m = int(round(self.adv_ratio * n))
        if m == 0 or (self.eps == 0 and self.alpha == 0):
            return inputs
        if m == n:
            return self.adversarial_examples(inputs, data_samples)
        idx = torch.randperm(n, device=inputs.device)[:m]
        adv = self.adversarial_examples(inputs[idx], [data_samples[i] for i in idx.tolist()])
        inputs = inputs.detach().clone()
        inputs[idx] = adv
        return inputs

    def loss(self, inputs: Tensor, data_samples: List[DataSample]) -> dict:
        """Losses on :meth:`training_inputs` in training mode; eval-mode calls stay clean."""
        if self.training:
            inputs = self.training_inputs(inputs, data_samples)
        return super().loss(inputs, data_samples)
