"""Explanation-map metrics of T-TAME (IEEE Access 2024, arXiv 2403.04523; official
``src/tame/metrics.py``): Average Drop (AD) and Increase in Confidence (IC) at 100 / 50 / 15 % of
the explanation kept, plus a localisation score for toy data with known object masks.

* ``AD = 100 / N * sum_i max(0, Y_i - O_i) / Y_i`` (lower is better);
* ``IC = 100 / N * sum_i [O_i > Y_i]`` (higher is better),

where ``Y_i`` is the classifier's softmax score of its predicted class on the image and ``O_i`` the
score of the same class on the image multiplied by the (thresholded, soft) explanation map
(:func:`mmmask.models.classifiers.ttame.quantile_masked_inputs`).
"""
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from torch import Tensor

from ...registry import METRICS

__all__ = ['average_drop', 'increase_in_confidence', 'localisation_scores', 'ExplanationADIC']


def average_drop(orig: Tensor, new: Tensor) -> Tensor:
    """AD in % (official ``get_AD``: NaN terms, e.g. 0/0, count as 0)."""
    return torch.nan_to_num((orig - new).clamp(min=0) / orig).sum() * (100.0 / orig.numel())


def increase_in_confidence(orig: Tensor, new: Tensor) -> Tensor:
    """IC in % (official ``get_IC``)."""
    return (new > orig).sum() * (100.0 / orig.numel())


def localisation_scores(maps: Tensor, masks: Tensor) -> Dict[str, float]:
    """How well ``maps`` ``[B, h, w]`` (any size; resized to the masks) point at the object.

    ``masks`` ``[B, H, W]`` are boolean object masks. Returns the mean over images of
    ``inside_outside_ratio`` (mean map value inside / outside; 1 for a map unrelated to the
    object), ``energy_in`` (fraction of the map's sum inside the object; equals the object's area
    fraction ``area`` for a constant map) and ``pointing`` (the map's maximum is inside the object).
    """
    if maps.dim() == 4:
        maps = maps[:, 0]
    masks = masks.bool()
    maps = torch.nn.functional.interpolate(maps[:, None].float(), size=masks.shape[-2:],
                                           mode='bilinear', align_corners=False)[:, 0]
    maps = maps - maps.flatten(1).min(1).values[:, None, None]
    m = masks.float()
    inside = (maps * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp(min=1)
    outside = (maps * (1 - m)).flatten(1).sum(1) / (1 - m).flatten(1).sum(1).clamp(min=1)
    energy = (maps * m).flatten(1).sum(1) / maps.flatten(1).sum(1).clamp(min=1e-12)
    argmax = maps.flatten(1).argmax(1)
    pointing = masks.flatten(1).gather(1, argmax[:, None])[:, 0].float()
    return dict(inside_outside_ratio=float((inside / outside.clamp(min=1e-12)).mean()),
                energy_in=float(energy.mean()), pointing=float(pointing.mean()),
                area=float(m.flatten(1).mean(1).mean()))


@METRICS.register_module()
class ExplanationADIC(BaseMetric):
    """AD / IC of explanation maps (T-TAME protocol) for an mmengine evaluator.

    Consumes ``pred_score`` and the ``masked_scores`` / ``drop_fractions`` that
    :class:`mmmask.TAMEClassifier` writes in ``predict`` if built with ``drop_fractions`` (official
    0, 0.5, 0.85, reported as 100 / 50 / 15 % kept). Keys ``AD@100``, ``IC@100``, ``AD@50`` ...
    """
    default_prefix = 'explain'

    def __init__(self, collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            get = sample.get if isinstance(sample, dict) else \
                (lambda k, d=None, s=sample: getattr(s, k, d))
            scores = get('masked_scores')
            if scores is None:
                raise KeyError('ExplanationADIC needs masked_scores in the predictions: build '
                               'TAMEClassifier with drop_fractions=[0.0, 0.5, 0.85]')
            pred_score, pred_label = get('pred_score'), get('pred_label')
            y = pred_score[int(pred_label)]
            self.results.append(dict(y=float(y), o=[float(v) for v in scores],
                                     fractions=list(get('drop_fractions'))))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        y = torch.tensor([r['y'] for r in results])
        o = torch.tensor([r['o'] for r in results])
        out = {}
        for j, frac in enumerate(results[0]['fractions']):
            kept = int(round(100 * (1 - frac)))
            out[f'AD@{kept}'] = float(average_drop(y, o[:, j]))
            out[f'IC@{kept}'] = float(increase_in_confidence(y, o[:, j]))
        return out
