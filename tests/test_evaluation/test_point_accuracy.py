"""PointAccuracy: hand-computed accuracy/mAcc, ignore handling and Evaluator building."""
import math

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import DefaultScope
from mmengine.structures import BaseDataElement

from mmmask.evaluation import PointAccuracy
from mmmask.registry import METRICS

# Two images. Class 0: 4 points, 3 right; class 1: 2 points, 0 right; class 2: 2 points, 2 right;
# two ignored points (one "wrong", one "right") do not count.
GT = [[0, 0, 1, 255, 2], [0, 0, 1, 2, 255]]
PRED = [[0, 1, 0, 7, 2], [0, 0, 2, 2, 255]]
ACCURACY = 100 * 5 / 8
MACC = 100 * (3 / 4 + 0 / 2 + 2 / 2) / 3


def samples(as_dict: bool):
    out = []
    for gt, pred in zip(GT, PRED):
        fields = dict(gt_point_labels=torch.tensor(gt), pred_point_labels=torch.tensor(pred))
        out.append(fields if as_dict else BaseDataElement(**fields))
    return out


@pytest.mark.parametrize('as_dict', [True, False])
def test_hand_made_example(as_dict):
    metric = PointAccuracy()
    metric.process({}, samples(as_dict))
    res = metric.compute_metrics(metric.results)
    assert res['accuracy'] == pytest.approx(ACCURACY)
    assert res['mAcc'] == pytest.approx(MACC)


def test_batches_accumulate_and_numpy_inputs():
    metric = PointAccuracy(num_classes=3)
    for gt, pred in zip(GT, PRED):  # one image per batch, numpy fields
        metric.process({}, [dict(gt_point_labels=np.array(gt), pred_point_labels=np.array(pred))])
    res = metric.evaluate(size=2)
    assert res == pytest.approx({'point/accuracy': ACCURACY, 'point/mAcc': MACC})


def test_custom_ignore_index_and_empty():
    metric = PointAccuracy(ignore_index=-1)
    metric.process({}, [dict(gt_point_labels=[1, 1, -1], pred_point_labels=[1, 0, 5])])
    res = metric.compute_metrics(metric.results)
    assert res == pytest.approx({'accuracy': 50.0, 'mAcc': 50.0})
    metric = PointAccuracy()
    metric.process({}, [dict(gt_point_labels=[255, 255], pred_point_labels=[0, 1])])
    res = metric.compute_metrics(metric.results)
    assert math.isnan(res['accuracy']) and math.isnan(res['mAcc'])


def test_bad_inputs():
    metric = PointAccuracy(num_classes=2)
    with pytest.raises(ValueError, match='num_classes'):
        metric.process({}, [dict(gt_point_labels=[0, 2], pred_point_labels=[0, 0])])
    with pytest.raises(ValueError, match='points'):
        metric.process({}, [dict(gt_point_labels=[0, 1], pred_point_labels=[0])])
    with pytest.raises(KeyError, match='pred_point_labels'):
        metric.process({}, [dict(gt_point_labels=[0, 1])])


def test_built_through_registry_and_evaluator():
    with DefaultScope.overwrite_default_scope('mmseg'):
        assert type(METRICS.build(dict(type='mmmask.PointAccuracy'))) is PointAccuracy
        evaluator = Evaluator(dict(type='mmmask.PointAccuracy', prefix='vitp'))
    assert type(evaluator.metrics[0]) is PointAccuracy
    evaluator.process(samples(as_dict=False))
    res = evaluator.evaluate(2)
    assert res == pytest.approx({'vitp/accuracy': ACCURACY, 'vitp/mAcc': MACC})
