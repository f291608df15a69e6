"""ViT-P point-sampling transforms: geometry, sampling law, packing and registry building."""
import numpy as np
import pytest
import torch
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope
from mmengine.structures import BaseDataElement

from mmmask.datasets.transforms import (CoarsenSegMap, PackPointInputs, SampleSegmentPoints,
                                        SegRandomResizedCrop, SegRandomRotate)
from mmmask.registry import TRANSFORMS


def three_segments(h: int = 40, w: int = 60) -> np.ndarray:
    """Map with a small (label 2), a medium (7) and a large (4) segment, plus an ignore strip."""
    seg = np.full((h, w), 4, np.uint8)
    seg[:5, :5] = 2  # 25 px
    seg[20:, 40:] = 7  # 400 px
    seg[:, -2:] = 255
    return seg


def results_of(seg: np.ndarray, img: np.ndarray = None) -> dict:
    img = np.repeat(seg[..., None], 3, axis=2).copy() if img is None else img
    return dict(img=img, gt_seg_map=seg, img_shape=seg.shape, seg_fields=['gt_seg_map'])


def decode(points: np.ndarray, h: int, w: int):
    rows = np.round((points[:, 0] + 1) / 2 * h).astype(int)
    cols = np.round((points[:, 1] + 1) / 2 * w).astype(int)
    return rows, cols


def test_mask_points_lie_in_their_segment():
    np.random.seed(0)
    seg = three_segments()
    out = SampleSegmentPoints(num_points=500)(results_of(seg))
    pts, labels = out['points'], out['point_labels']
    assert pts.shape == (500, 2) and pts.dtype == np.float32
    assert labels.shape == (500, ) and labels.dtype == np.int64
    assert pts.min() >= -1 and pts.max() < 1
    rows, cols = decode(pts, *seg.shape)
    np.testing.assert_array_equal(seg[rows, cols], labels)
    assert set(labels.tolist()) == {2, 4, 7}  # never the ignore label


def test_points_are_row_first():
    np.random.seed(0)
    seg = np.full((10, 30), 255, np.uint8)
    seg[9, 0] = 1  # one pixel in the last row, first column
    out = SampleSegmentPoints(num_points=4)(results_of(seg))
    np.testing.assert_allclose(out['points'], [[2 * 9 / 10 - 1, -1.0]] * 4)
    assert out['point_labels'].tolist() == [1] * 4


def test_segments_drawn_uniformly_not_by_area():
    np.random.seed(1)
    seg = three_segments()
    sampler = SampleSegmentPoints(num_points=250)
    labels = np.concatenate([sampler(results_of(seg))['point_labels'] for _ in range(40)])
    freq = np.array([(labels == c).mean() for c in (2, 4, 7)])
    np.testing.assert_allclose(freq, 1 / 3, atol=0.03)  # 10,000 draws: sd ~0.005


def test_pixels_uniform_inside_a_segment():
    np.random.seed(2)
    seg = np.full((4, 4), 255, np.uint8)
    seg[1:3, 1:3] = 5
    pts = SampleSegmentPoints(num_points=8000)(results_of(seg))['points']
    rows, cols = decode(pts, 4, 4)
    counts = np.bincount(rows * 4 + cols, minlength=16).reshape(4, 4)
    assert counts.sum() == counts[1:3, 1:3].sum()
    np.testing.assert_allclose(counts[1:3, 1:3] / 8000, 0.25, atol=0.03)


def test_same_seed_same_points():
    seg = three_segments()
    sampler = SampleSegmentPoints(num_points=50)
    np.random.seed(5)
    a = sampler(results_of(seg))['points']
    np.random.seed(5)
    b = sampler(results_of(seg))['points']
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize('source', ['mask', 'box'])
def test_empty_map_returns_none(source):
    seg = np.full((8, 8), 255, np.uint8)
    assert SampleSegmentPoints(num_points=3, label_source=source)(results_of(seg)) is None


def test_box_mode_with_given_boxes():
    np.random.seed(3)
    seg = np.full((50, 80), 255, np.uint8)  # the map only gives the shape here
    boxes = np.array([[10, 5, 20, 15], [60.5, 30.2, 79.9, 49.7]], np.float32)
    results = results_of(seg)
    results.update(gt_bboxes=boxes, gt_bboxes_labels=np.array([3, 9]))
    out = SampleSegmentPoints(num_points=400, label_source='box')(results)
    rows, cols = decode(out['points'], 50, 80)
    labels = out['point_labels']
    for (x1, y1, x2, y2), cls in zip(boxes, (3, 9)):
        sel = labels == cls
        assert 150 < sel.sum() < 250
        assert (cols[sel] >= np.floor(x1)).all() and (cols[sel] < x2).all()
        assert (rows[sel] >= np.floor(y1)).all() and (rows[sel] < y2).all()
    # mmdet HorizontalBoxes work too; a box outside the map is never drawn
    from mmdet.structures.bbox import HorizontalBoxes
    results.update(gt_bboxes=HorizontalBoxes(torch.tensor([[0., 0., 4., 4.], [90., 0., 99., 9.]])),
                   gt_bboxes_labels=np.array([1, 2]))
    out = SampleSegmentPoints(num_points=50, label_source='box')(results)
    rows, cols = decode(out['points'], 50, 80)
    assert out['point_labels'].tolist() == [1] * 50 and rows.max() < 4 and cols.max() < 4


def test_box_mode_from_connected_components():
    np.random.seed(4)
    seg = np.full((30, 30), 255, np.uint8)
    seg[2:6, 3:9] = 1  # two components of class 1 ...
    seg[20:28, 20:23] = 1
    seg[10, 10] = 2  # ... and 8-connected diagonal pixels of class 2: one component
    seg[11, 11] = 2
    out = SampleSegmentPoints(num_points=3000, label_source='box')(results_of(seg))
    rows, cols = decode(out['points'], 30, 30)
    labels = out['point_labels']
    boxes = {(1, 0): (3, 2, 9, 6), (1, 1): (20, 20, 23, 28), (2, 0): (10, 10, 12, 12)}
    inside = {key: (labels == key[0]) & (cols >= x1) & (cols < x2) & (rows >= y1) & (rows < y2)
              for key, (x1, y1, x2, y2) in boxes.items()}
    assert np.logical_or.reduce(list(inside.values())).all()
    for hits in inside.values():  # three boxes, each drawn ~1/3 of the time
        assert abs(hits.mean() - 1 / 3) < 0.05
    # box labels come from masks, so a box point may leave its own component (class 2's box)
    assert (seg[rows[inside[(2, 0)]], cols[inside[(2, 0)]]] == 255).any()


def test_rrc_keeps_image_and_maps_aligned():
    np.random.seed(0)
    rng = np.random.RandomState(0)
    seg = rng.randint(0, 20, (90, 70)).astype(np.uint8)
    crop = SegRandomResizedCrop(size=(48, 40))
    for _ in range(10):
        out = crop(results_of(seg.copy()))
        assert out['img'].shape == (48, 40, 3) and out['gt_seg_map'].shape == (48, 40)
        assert out['img_shape'] == (48, 40)
        for c in range(3):
            np.testing.assert_array_equal(out['img'][..., c], out['gt_seg_map'])


def test_rrc_parameters_follow_torchvision():
    np.random.seed(0)
    crop = SegRandomResizedCrop(scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3))
    for _ in range(200):
        top, left, h, w = crop.get_params(300, 400)
        assert 0 <= top <= 300 - h and 0 <= left <= 400 - w
        assert 0.5 * 120000 * 0.97 <= h * w <= 120000
        assert 3 / 4 * 0.97 <= w / h <= 4 / 3 * 1.03
    # no attempt succeeds: torchvision's central-crop fallback clamps the ratio
    fallback = SegRandomResizedCrop(max_attempts=0, ratio=(3 / 4, 4 / 3))
    assert fallback.get_params(100, 400) == (0, (400 - 133) // 2, 100, 133)
    assert fallback.get_params(100, 90) == (0, 0, 100, 90)


def test_rotation_by_fixed_angle_aligns_image_and_map():
    rng = np.random.RandomState(1)
    seg = np.kron(rng.randint(0, 10, (6, 8)), np.ones((8, 8), int)).astype(np.uint8)
    rot = SegRandomRotate(degree=(30.0, 30.0), pad_val=255, seg_pad_val=255)
    out = rot(results_of(seg.copy()))
    assert out['rotate_angle'] == 30.0 and out['gt_seg_map'].shape == seg.shape
    for c in range(3):
        np.testing.assert_array_equal(out['img'][..., c], out['gt_seg_map'])
    assert (out['gt_seg_map'] == 255).any() and not np.array_equal(out['gt_seg_map'], seg)
    # corners are padded with each key's own value
    out = SegRandomRotate(degree=(45.0, 45.0), pad_val=0, seg_pad_val=255)(results_of(seg))
    assert out['gt_seg_map'][0, 0] == 255 and (out['img'][0, 0] == 0).all()
    # 90 degrees on a square map is an exact clockwise quarter turn (mmcv's convention)
    square = rng.randint(0, 50, (9, 9)).astype(np.uint8)
    out = SegRandomRotate(degree=(90.0, 90.0))(results_of(square))
    np.testing.assert_array_equal(out['gt_seg_map'], np.rot90(square, k=-1))


def test_rotation_prob_zero_is_identity_and_angles_bounded():
    seg = three_segments()
    out = SegRandomRotate(prob=0.0)(results_of(seg.copy()))
    np.testing.assert_array_equal(out['gt_seg_map'], seg)
    np.random.seed(0)
    rot = SegRandomRotate(degree=60)
    angles = [rot(results_of(seg.copy()))['rotate_angle'] for _ in range(100)]
    assert -60 <= min(angles) < -40 and 40 < max(angles) <= 60


def test_coarsen_only_adds_ignore():
    seg = three_segments()
    out = CoarsenSegMap(erode_px=2)(results_of(seg.copy()))['gt_seg_map']
    changed = out != seg
    assert changed.any() and (out[changed] == 255).all()
    # the 5x5 square of label 2 in the corner keeps only the pixels 2+ away from label 4
    assert np.argwhere(out == 2).tolist() == [[r, c] for r in range(3) for c in range(3)]
    # a band of 2 px along every inner boundary (incl. the ignore strip) is removed
    assert (out[20:, 40:42] == 255).all() and (out[18:22, 40:58] == 255).all()
    assert (out[22:, 42:56] == 7).all() and (out[20:, 56:58] == 255).all()
    assert (out[:, 56:58] == 255).all() and (out[:18, 55] == 4).all()
    assert (out[-1, 42:56] == 7).all()  # the image frame does not erode
    np.testing.assert_array_equal(CoarsenSegMap(erode_px=0)(results_of(seg.copy()))['gt_seg_map'],
                                  seg)


def test_pack_point_inputs():
    np.random.seed(0)
    seg = three_segments()
    img = np.asfortranarray(np.random.randint(0, 255, seg.shape + (3, ), np.uint8))
    results = results_of(seg, img)
    results.update(img_path='x.jpg', ori_shape=seg.shape)
    results = SampleSegmentPoints(num_points=7)(results)
    packed = PackPointInputs()(results)
    inputs, sample = packed['inputs'], packed['data_samples']
    assert inputs.dtype == torch.uint8 and inputs.shape == (3, 40, 60) and inputs.is_contiguous()
    assert torch.equal(inputs, torch.from_numpy(img).permute(2, 0, 1))
    assert isinstance(sample, BaseDataElement)
    assert sample.points.dtype == torch.float32 and sample.points.shape == (7, 2)
    assert sample.gt_point_labels.dtype == torch.int64 and sample.gt_point_labels.shape == (7, )
    assert set(sample.metainfo) == {'img_path', 'ori_shape', 'img_shape'}
    assert 'points' in sample.keys() and 'img_path' not in sample.keys()
    with pytest.raises(KeyError, match='SampleSegmentPoints'):
        PackPointInputs()(results_of(seg))


def test_bad_arguments_name_the_fix():
    with pytest.raises(ValueError, match="'mask'"):
        SampleSegmentPoints(label_source='polygon')
    with pytest.raises(ValueError, match='>= 1'):
        SampleSegmentPoints(num_points=0)
    with pytest.raises(ValueError, match='interpolation'):
        SegRandomResizedCrop(interpolation='linear')


def test_build_through_registry_in_a_pipeline():
    cfgs = [
        dict(type='mmmask.SegRandomResizedCrop', size=(32, 32)),
        dict(type='mmmask.SegRandomRotate', degree=60),
        dict(type='mmmask.CoarsenSegMap', erode_px=1),
        dict(type='mmmask.SampleSegmentPoints', num_points=16),
        dict(type='mmmask.PackPointInputs'),
    ]
    with DefaultScope.overwrite_default_scope('mmseg'):
        built = [TRANSFORMS.build(cfg) for cfg in cfgs]
        pipeline = Compose(cfgs)
    assert [type(t) for t in built] == [SegRandomResizedCrop, SegRandomRotate, CoarsenSegMap,
                                        SampleSegmentPoints, PackPointInputs]
    with DefaultScope.overwrite_default_scope('mmmask'):
        scoped = Compose([dict(cfg, type=cfg['type'].split('.')[1]) for cfg in cfgs])
    assert [type(t) for t in scoped.transforms] == [type(t) for t in built]
    np.random.seed(0)
    out = pipeline(results_of(three_segments()))
    assert out['inputs'].shape == (3, 32, 32) and out['data_samples'].points.shape == (16, 2)
    # a map that is all ignore makes the whole pipeline return None (BaseDataset refetches)
    assert pipeline(results_of(np.full((40, 40), 255, np.uint8))) is None
