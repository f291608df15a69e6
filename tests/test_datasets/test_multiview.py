"""mmmask.MultiViewWithKeys: per-view pipelines, per-view keys kept, image sources, clear errors."""
import numpy as np
import pytest
from mmcv.transforms import BaseTransform

from mmmask.registry import TRANSFORMS


@TRANSFORMS.register_module(force=True)
class _TagView(BaseTransform):
    """Test transform: records a per-view value (the image's mean) under ``tag``."""

    def transform(self, results):
        results['tag'] = float(results['img'].mean())
        return results


def _build(**kwargs):
    return TRANSFORMS.build(dict(type='mmmask.MultiViewWithKeys', **kwargs))


def test_views_and_keys_per_view():
    t = _build(num_views=[2, 1], keys=['tag'],
               transforms=[[dict(type='mmpretrain.RandomResizedCrop', scale=16), dict(type='mmmask._TagView')],
                           [dict(type='mmpretrain.RandomResizedCrop', scale=8), dict(type='mmmask._TagView')]])
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    out = t(dict(img=img))
    assert [i.shape for i in out['img']] == [(16, 16, 3), (16, 16, 3), (8, 8, 3)]
    assert out['view_group'] == [0, 0, 1]
    assert out['tag'] == pytest.approx([float(i.mean()) for i in out['img']])


def test_sources_read_other_images():
    t = _build(num_views=[1, 1], keys=['tag'], sources=[None, 'img_next'],
               transforms=[[dict(type='mmmask._TagView')], [dict(type='mmmask._TagView')]])
    out = t(dict(img=np.zeros((4, 4, 3), np.uint8), img_next=np.full((4, 4, 3), 9, np.uint8)))
    assert out['tag'] == [0.0, 9.0]
    with pytest.raises(KeyError, match='img_prev'):
        _build(num_views=[1], sources=['img_prev'], transforms=[[]])(
            dict(img=np.zeros((4, 4, 3), np.uint8)))


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match='one view count per pipeline'):
        _build(num_views=[1, 2], transforms=[[]])
    with pytest.raises(KeyError, match='did not produce `coord`'):
        _build(num_views=1, keys=['coord'], transforms=[[]])(dict(img=np.zeros((4, 4, 3))))
    out = _build(num_views=1, keys=['coord'], transforms=[[]], allow_missing=True)(
        dict(img=np.zeros((4, 4, 3))))
    assert out['coord'] == [None]
