"""ForAug bias metrics: formulas, and that they separate hand-built models with known biases
(a colour detector that looks everywhere / only at the centre, a background-tint reader)."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from mmmask.datasets.foraug import ForNetDataset, prepare_fornet
from mmmask.evaluation.robustness.foraug_bias import (ForAugBiasEvaluator, background_robustness,
                                                      center_bias, foreground_focus, grad_cam,
                                                      integrated_gradients, size_bias)

K = 4
FG = torch.tensor([[250, 20, 20], [20, 250, 20], [20, 20, 250], [250, 250, 20]]) / 255.
TINT = torch.tensor([[60, 60, 140], [140, 60, 60], [60, 140, 60], [120, 120, 120]]) / 255.
SIZE = 96


def test_formulas():
    assert background_robustness(0.4, 0.8) == pytest.approx(0.5)
    acc = [0.2, 0.4, 0.2, 0.4, 1.0, 0.4, 0.2, 0.4, 0.2]
    assert center_bias(acc) == pytest.approx(1 - (0.2 + 0.4) / 2)
    assert center_bias([0.7] * 9) == pytest.approx(0.0)
    sb = size_bias([0.5, 1.0, 2.0], [0.3, 0.6, 0.45])
    assert sb['relative'] == {0.5: 0.5, 1.0: 1.0, 2.0: 0.75}
    assert sb['size_bias'] == pytest.approx(1 - (0.5 + 0.75) / 2)
    a = torch.zeros(1, 4, 4)
    a[0, :2, :2] = 1.0  # all attribution on a quarter of the image
    m = torch.zeros(1, 4, 4)
    m[0, :2, :] = 1.0  # foreground = top half
    assert foreground_focus(a, m).item() == pytest.approx(1.0 / 0.5)
    assert torch.isnan(foreground_focus(a, torch.zeros(1, 4, 4))).all()


def test_integrated_gradients_completeness():
    """IG sums to f(x) - f(baseline) for a model that is linear in the input."""
    w = torch.randn(2, 3, 5, 5)
    model = lambda x: (x.unsqueeze(1) * w).flatten(2).sum(-1)  # noqa: E731
    x = torch.rand(1, 3, 5, 5)
    attr_signed = integrated_gradients(model, x, torch.tensor([1]), steps=4)
    assert attr_signed.sum().item() == pytest.approx((x[0] * w[1]).abs().sum().item(), rel=1e-5)


def test_grad_cam_localises_the_evidence():
    """A conv 'feature' that fires on bright pixels, pooled and weighted: the CAM of the class is
    where the bright square is."""
    feat = nn.Conv2d(3, 2, 1)
    with torch.no_grad():
        feat.weight.zero_()
        feat.weight[0, :, 0, 0] = 1.0
        feat.bias.zero_()
    head = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    model = lambda x: head(torch.relu(feat(x)).mean((2, 3)))  # noqa: E731
    x = torch.zeros(1, 3, 8, 8)
    x[..., 2:4, 5:7] = 1.0
    cam = grad_cam(model, x, torch.tensor([0]), feat)
    assert cam.shape == (1, 8, 8)
    mask = torch.zeros(1, 8, 8)
    mask[0, 2:4, 5:7] = 1
    assert foreground_focus(cam, mask).item() == pytest.approx(16.0)


class ColourDetector(nn.Module):
    """Share of pixels with a class's object colour; ``centre_only`` looks at the middle cell."""

    def __init__(self, centre_only: bool = False):
        super().__init__()
        self.centre_only = centre_only

    def forward(self, x):
        d = ((x.unsqueeze(1) - FG.view(1, K, 3, 1, 1))**2).sum(2)
        sim = torch.exp(-d / 0.01)
        if self.centre_only:
            h, w = x.shape[-2:]
            keep = torch.zeros(h, w)
            keep[h // 3:2 * h // 3, w // 3:2 * w // 3] = 1
            sim = sim * keep
        return 100 * sim.mean((2, 3))


class BackgroundReader(nn.Module):
    """Classifies by the tint of the image border (the background)."""

    def forward(self, x):
        ring = torch.ones(x.shape[-2:])
        ring[4:-4, 4:-4] = 0
        m = (x * ring).sum((2, 3)) / ring.sum()
        return -100 * ((m.unsqueeze(1) - TINT.view(1, K, 3))**2).sum(-1)


def _scene(cls, seed):
    rng = np.random.RandomState(seed)
    tint = (TINT[cls].numpy() * 255)[::-1]  # BGR
    img = np.clip(tint + rng.normal(0, 12, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((SIZE, SIZE), bool)
    s = int(rng.randint(24, 34))
    y, x = rng.randint(0, SIZE - s + 1, 2)
    mask[y:y + s, x:x + s] = True
    img[mask] = (FG[cls].numpy() * 255)[::-1]
    return img, mask


@pytest.fixture(scope='module')
def fornet(tmp_path_factory):
    root = tmp_path_factory.mktemp('fornet')
    samples = [(f'c{c}', f'i{i}', *_scene(c, 100 * c + i)) for c in range(K) for i in range(6)]
    prepare_fornet(samples, str(root), 'val', blur_radius=2.0)
    return ForNetDataset(str(root), split='val', pruning_ratio=1.1)


def _evaluate(model, ds, metrics):
    ev = ForAugBiasEvaluator(ds, model, normalize=lambda x: x / 255., input_size=64, seed=0,
                             recombine_kwargs=dict(mask_smoothing_sigma=1.0))
    return ev.evaluate(metrics, attribution='ig', size_facts=(0.5, 1.0, 1.5))


def test_bias_metrics_separate_models_with_known_biases(fornet):
    """Evidence: a background reader is perfect on same-class backgrounds and near chance on any
    background (low background robustness) and attributes to the background (focus < 1); the
    colour detector is background-robust and focused on the object; looking only at the centre
    cell gives a large centre bias, looking everywhere none."""
    colour = _evaluate(ColourDetector(), fornet, ('background', 'focus', 'center', 'size'))
    centre = _evaluate(ColourDetector(centre_only=True), fornet, ('center', ))
    reader = _evaluate(BackgroundReader(), fornet, ('background', 'focus'))

    assert colour['acc_same'] == colour['acc_all'] == 1.0
    assert colour['background_robustness'] == pytest.approx(1.0)
    assert reader['acc_same'] == 1.0 and reader['acc_original'] == 1.0
    assert reader['background_robustness'] < 0.4
    assert colour['foreground_focus'] > 3.0 > 0.5 > reader['foreground_focus']
    assert min(colour['nonant_acc']) == 1.0 and colour['center_bias'] == pytest.approx(0.0)
    assert centre['nonant_acc'][4] == 1.0
    assert max(centre['nonant_acc'][:4] + centre['nonant_acc'][5:]) <= 0.3
    assert centre['center_bias'] > 0.7
    assert colour['size_bias'] == pytest.approx(0.0, abs=0.02)
    assert set(colour['size_acc']) == {0.5, 1.0, 1.5}
    assert not math.isnan(colour['foreground_focus'])


def test_composites_are_deterministic_and_match_masks(fornet):
    ev = ForAugBiasEvaluator(fornet, ColourDetector(), normalize=lambda x: x / 255.,
                             input_size=96, seed=3, recombine_kwargs=dict(mask_smoothing_sigma=0.))
    x1, m1, y1, _ = ev.composites('all')
    x2, m2, y2, _ = ev.composites('all')
    assert torch.equal(x1, x2) and torch.equal(m1, m2) and torch.equal(y1, y2)
    fg_px = x1.permute(0, 2, 3, 1)[m1 == 1] / 255.
    assert ((fg_px.unsqueeze(1) - FG.unsqueeze(0)).abs().sum(-1).min(1).values < 0.05).all()
