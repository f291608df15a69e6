"""SurfaceNormalMetric: exact cases, pooling over the test set, invalid pixels, missing fields."""
import math

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

from mmmask.evaluation.metrics import SurfaceNormalMetric
from mmmask.registry import METRICS

NAMES = ['normal_mean', 'normal_median', 'normal_rmse', 'normal_a5', 'normal_a7.5',
         'normal_a11.25', 'normal_a22.5', 'normal_a30']


def random_normals(h, w, seed=0):
    n = torch.from_numpy(np.random.default_rng(seed).normal(size=(3, h, w))).float()
    return n / n.norm(dim=0, keepdim=True)


def sample(pred, gt, as_dict=True):
    if as_dict:
        return dict(pred_normal_map=dict(data=pred), gt_normal_map=dict(data=gt))
    from mmseg.structures import SegDataSample
    s = SegDataSample()
    s.set_data(dict(pred_normal_map=PixelData(data=pred), gt_normal_map=PixelData(data=gt)))
    return s


def run(samples, **kwargs):
    metric = SurfaceNormalMetric(**kwargs)
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def rotate_90_about_z(n):
    """(x, y, z) -> (-y, x, z): 90 degrees for normals with z = 0."""
    return torch.stack([-n[1], n[0], n[2]])


@pytest.mark.parametrize('bin_width', [0.01, None])
@pytest.mark.parametrize('as_dict', [True, False])
def test_all_correct(bin_width, as_dict):
    gt = random_normals(8, 9)
    res = run([sample(gt * 3.0, gt, as_dict)], bin_width=bin_width)  # scale does not matter
    assert list(res) == NAMES
    assert res['normal_mean'] == pytest.approx(0, abs=1e-3)
    assert res['normal_rmse'] == pytest.approx(0, abs=1e-3)
    assert res['normal_median'] == pytest.approx(0, abs=0.01)
    for t in ('5', '7.5', '11.25', '22.5', '30'):
        assert res[f'normal_a{t}'] == 100.0


@pytest.mark.parametrize('bin_width', [0.01, None])
def test_known_90_degree_rotation(bin_width):
    gt = random_normals(6, 7, seed=1)
    gt[2] = 0  # in the image plane, so the rotation about z turns every vector by 90 degrees
    gt = gt / gt.norm(dim=0, keepdim=True)
    res = run([sample(rotate_90_about_z(gt), gt)], bin_width=bin_width)
    assert res['normal_mean'] == pytest.approx(90, abs=1e-4)
    assert res['normal_rmse'] == pytest.approx(90, abs=1e-4)
    assert res['normal_median'] == pytest.approx(90, abs=0.01)
    assert res['normal_a30'] == 0.0
    # the opposite vector is 180 degrees
    assert run([sample(-gt, gt)])['normal_mean'] == pytest.approx(180, abs=1e-4)


@pytest.mark.parametrize('bin_width', [0.01, None])
def test_pooled_over_pixels_not_averaged_over_images(bin_width):
    # image A: 4x5 = 20 valid pixels, all right (0 deg); image B: 60 valid pixels, all 90 deg
    a = random_normals(4, 5, seed=2)
    b = random_normals(6, 10, seed=3)
    b[2] = 0
    b = b / b.norm(dim=0, keepdim=True)
    metric = SurfaceNormalMetric(bin_width=bin_width)
    metric.process({}, [sample(a.clone(), a)])  # separate batches accumulate
    metric.process({}, [sample(rotate_90_about_z(b), b)])
    res = metric.compute_metrics(metric.results)
    assert res['normal_mean'] == pytest.approx(90 * 60 / 80, abs=1e-4)  # 67.5, not 45
    assert res['normal_mean'] != pytest.approx((0 + 90) / 2, abs=1)
    assert res['normal_rmse'] == pytest.approx(math.sqrt(90**2 * 60 / 80), abs=1e-4)
    assert res['normal_median'] == pytest.approx(90, abs=0.01)  # 60 of 80 pixels at 90
    assert res['normal_a11.25'] == pytest.approx(100 * 20 / 80)


def test_mixed_errors_and_median():
    # errors 10, 20, 40 degrees (rotations about z of in-plane normals)
    gt = torch.zeros(3, 1, 3)
    gt[0] = 1
    angles = torch.tensor([10.0, 20.0, 40.0]) * math.pi / 180
    pred = torch.stack([torch.cos(angles), torch.sin(angles), torch.zeros(3)])[:, None]
    res = run([sample(pred, gt)])
    assert res['normal_mean'] == pytest.approx(70 / 3, abs=1e-3)
    assert res['normal_median'] == pytest.approx(20, abs=0.01)
    assert res['normal_rmse'] == pytest.approx(math.sqrt((100 + 400 + 1600) / 3), abs=1e-3)
    assert res['normal_a11.25'] == pytest.approx(100 / 3)
    assert res['normal_a22.5'] == pytest.approx(200 / 3)
    assert res['normal_a30'] == pytest.approx(200 / 3)
    exact = run([sample(pred, gt)], bin_width=None)
    assert exact['normal_median'] == pytest.approx(20, abs=1e-4)


def test_invalid_pixels_ignored():
    gt = random_normals(5, 5, seed=4)
    pred = gt.clone()
    gt[:, :2] = 0  # invalid ground truth (the zero vector) ...
    pred[:, :2] = -pred[:, :2]  # ... where the prediction is 180 degrees off
    res = run([sample(pred, gt)])
    assert res['normal_mean'] == pytest.approx(0, abs=1e-3) and res['normal_a5'] == 100.0
    # an image with no valid pixel contributes nothing; none at all gives NaN
    empty = torch.zeros(3, 4, 4)
    res2 = run([sample(pred, gt), sample(random_normals(4, 4), empty)])
    assert res2 == pytest.approx(res, abs=1e-6)
    assert all(math.isnan(v) for v in run([sample(random_normals(4, 4), empty)]).values())


def test_missing_prediction_raises():
    gt = random_normals(3, 3)
    metric = SurfaceNormalMetric()
    with pytest.raises(KeyError, match='pred_normal_map'):
        metric.process({}, [dict(gt_normal_map=dict(data=gt))])
    with pytest.raises(KeyError, match='gt_normal_map'):
        metric.process({}, [dict(pred_normal_map=dict(data=gt))])
    with pytest.raises(ValueError, match='differ'):
        metric.process({}, [sample(random_normals(3, 4), gt)])


def test_built_from_registry_and_evaluator():
    init_default_scope('mmseg')
    assert isinstance(METRICS.build(dict(type='mmmask.SurfaceNormalMetric')),
                      SurfaceNormalMetric)
    gt = random_normals(4, 4)
    evaluator = Evaluator(dict(type='mmmask.SurfaceNormalMetric'))
    evaluator.process([sample(gt, gt, as_dict=False)], {})
    res = evaluator.evaluate(1)
    assert set(res) == set(NAMES) and res['normal_a30'] == 100.0
