"""NYUD-v2 multi-task data: dataset on the toy world, normal loading/flipping/packing and the
multi-task data preprocessor's per-field padding."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmmask.datasets import NYU40_CLASSES, NYUv2MultiTaskDataset
from mmmask.datasets.toy import ensure_toy_data
from mmmask.datasets.toy.formats import _rng
from mmmask.datasets.toy.scenes import SKY, render_scene
from mmmask.datasets.transforms import LoadNormalAnnotation, PackDenseInputs
from mmmask.models.data_preprocessors import DenseDataPreprocessor
from mmmask.registry import DATASETS, TRANSFORMS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CFG = osp.join(REPO, 'configs', '_base_', 'datasets', 'toy_nyu_multitask.py')
LOADS = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
         dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
         dict(type='mmmask.LoadNormalAnnotation')]


@pytest.fixture(scope='module')
def nyu_root(tmp_path_factory):
    """The toy NYU world linked into a temporary data folder (generated into the cache once)."""
    init_default_scope('mmseg')
    return ensure_toy_data('nyu', str(tmp_path_factory.mktemp('data') / 'toy' / 'nyu'))


def dataset_cfg(root, split='train', pipeline=LOADS):
    cfg = Config.fromfile(TOY_CFG)
    loader = cfg.train_dataloader if split == 'train' else cfg.val_dataloader
    ds = copy.deepcopy(loader.dataset.to_dict())
    ds.update(data_root=root, pipeline=pipeline)
    return ds


def loaded(root, index=0, split='train'):
    init_default_scope('mmseg')
    return DATASETS.build(dataset_cfg(root, split))[index]


def test_lengths_and_paths(nyu_root):
    init_default_scope('mmseg')
    train = DATASETS.build(dataset_cfg(nyu_root, 'train'))
    test = DATASETS.build(dataset_cfg(nyu_root, 'test'))
    assert isinstance(train, NYUv2MultiTaskDataset)
    assert (len(train), len(test)) == (400, 100)
    assert len(train.metainfo['classes']) == 12 and train.label_map is None
    info = test.get_data_info(7)
    for key, folder in [('img_path', 'images'), ('seg_map_path', 'semantic'),
                        ('depth_map_path', 'annotations'), ('normal_map_path', 'normals')]:
        assert osp.basename(osp.dirname(info[key])) == 'test'
        assert osp.basename(osp.dirname(osp.dirname(info[key]))) == folder
        assert osp.splitext(osp.basename(info[key]))[0] == 'playroom_00007'
        assert osp.isfile(info[key])
    assert info['seg_fields'] == [] and info['reduce_zero_label'] is False


def test_all_fields_loaded(nyu_root):
    r = loaded(nyu_root, 5)
    assert r['seg_fields'] == ['gt_seg_map', 'gt_depth_map', 'gt_normal_map']
    assert r['img'].shape == (64, 64, 3) and r['img'].dtype == np.uint8
    seg, depth, normal = r['gt_seg_map'], r['gt_depth_map'], r['gt_normal_map']
    assert seg.shape == (64, 64) and seg.dtype == np.uint8
    assert set(np.unique(seg).tolist()) <= set(range(12)) | {255}
    assert depth.shape == (64, 64) and depth.dtype == np.float32
    assert 0 < depth.min() and depth.max() <= 10.0 + 1e-6
    assert normal.shape == (64, 64, 3) and normal.dtype == np.float32
    assert normal.min() >= -1 and normal.max() <= 1
    norm = np.linalg.norm(normal, axis=-1)
    valid = norm > 0.5
    np.testing.assert_allclose(norm[valid], 1, atol=0.01)
    assert (normal[~valid] == 0).all()
    # the sky (and only the sky) has no normal; most of the ground points up (-y, y is down)
    np.testing.assert_array_equal(~valid, seg == SKY)
    assert (normal[seg == 11][:, 1] < -0.5).mean() > 0.5


def test_normals_match_render_scene(nyu_root):
    """The file is BGR on disk (written by OpenCV from RGB); loading gives x, y, z back."""
    index = 3
    scene = render_scene(_rng('nyu', 'train', index), 'train')
    r = loaded(nyu_root, index)
    assert r['img_path'].endswith(f'playroom_{index:05d}.jpg')
    valid = np.linalg.norm(scene.normals, axis=-1) > 0.5
    np.testing.assert_array_equal(np.linalg.norm(r['gt_normal_map'], axis=-1) > 0.5, valid)
    # 8-bit quantisation: |error| <= 1/255 per component
    np.testing.assert_allclose(r['gt_normal_map'], np.where(valid[..., None], scene.normals, 0),
                               atol=1.01 / 255)
    np.testing.assert_array_equal(r['gt_seg_map'], scene.semantic)
    np.testing.assert_allclose(r['gt_depth_map'], scene.depth, atol=5e-4)
    bgr = LoadNormalAnnotation(channel_order='bgr')(
        dict(normal_map_path=r['normal_map_path'], seg_fields=[]))
    np.testing.assert_array_equal(bgr['gt_normal_map'], r['gt_normal_map'][..., ::-1])
    assert bgr['seg_fields'] == ['gt_normal_map']
    assert np.abs(scene.normals[..., 0]).max() > 0.05  # x is exercised, not all-zero


def test_label_dirs_optional_and_nyu40_defaults(nyu_root):
    init_default_scope('mmseg')
    ds = NYUv2MultiTaskDataset(data_root=nyu_root, reduce_zero_label=False,
                               metainfo=dict(classes=tuple(str(k) for k in range(12))),
                               data_prefix=dict(img_path='images/test',
                                                normal_map_path='normals/test'),
                               pipeline=[dict(type='mmmask.LoadNormalAnnotation')])
    info = ds.get_data_info(0)
    assert 'normal_map_path' in info and 'seg_map_path' not in info \
        and 'depth_map_path' not in info
    assert len(ds.metainfo['palette']) == 12  # a replacing class list gets its own palette
    assert ds[0]['seg_fields'] == ['gt_normal_map']
    # real NYU-40: 40 classes, a palette, 0 = unlabelled; a subset of the names is re-indexed
    full = NYUv2MultiTaskDataset(data_root=nyu_root, lazy_init=True,
                                 data_prefix=dict(img_path='images/test'))
    assert full.metainfo['classes'] == NYU40_CLASSES and len(NYU40_CLASSES) == 40
    assert len(full.metainfo['palette']) == 40 and full.reduce_zero_label is True
    sub = NYUv2MultiTaskDataset(data_root=nyu_root, lazy_init=True,
                                metainfo=dict(classes=('floor', 'wall')),
                                data_prefix=dict(img_path='images/test'))
    assert sub.label_map[0] == 1 and sub.label_map[1] == 0 and sub.label_map[5] == 255
    with pytest.raises(KeyError, match='unknown data_prefix'):
        NYUv2MultiTaskDataset(data_root=nyu_root, data_prefix=dict(img_path='images/test',
                                                                   seg_path='semantic/test'))


@pytest.mark.parametrize('direction,axis', [('horizontal', 0), ('vertical', 1)])
def test_flip_negates_the_mirrored_component(nyu_root, direction, axis):
    r = loaded(nyu_root, 2)
    before = copy.deepcopy(r)
    flip = TRANSFORMS.build(dict(type='mmmask.RandomFlipDense', prob=1.0, direction=direction))
    out = flip(r)
    assert out['flip'] and out['flip_direction'] == direction
    np_axis = 1 if direction == 'horizontal' else 0
    np.testing.assert_array_equal(out['img'], np.flip(before['img'], np_axis))
    np.testing.assert_array_equal(out['gt_seg_map'], np.flip(before['gt_seg_map'], np_axis))
    np.testing.assert_array_equal(out['gt_depth_map'], np.flip(before['gt_depth_map'], np_axis))
    expected = np.flip(before['gt_normal_map'], np_axis).copy()
    expected[..., axis] *= -1
    np.testing.assert_array_equal(out['gt_normal_map'], expected)
    other = [c for c in range(3) if c != axis]
    np.testing.assert_array_equal(out['gt_normal_map'][..., other],
                                  np.flip(before['gt_normal_map'], np_axis)[..., other])
    invalid = np.linalg.norm(out['gt_normal_map'], axis=-1) == 0
    np.testing.assert_array_equal(invalid, np.flip(before['gt_seg_map'], np_axis) == SKY)
    assert not np.signbit(out['gt_normal_map'][invalid]).any()  # zeros stay +0
    # flipping twice is the identity
    twice = flip(out)
    np.testing.assert_array_equal(twice['gt_normal_map'], before['gt_normal_map'])


def test_mmseg_resize_and_crop_move_normals(nyu_root):
    r = loaded(nyu_root, 1)
    normal = r['gt_normal_map'].copy()
    out = TRANSFORMS.build(dict(type='Resize', scale=(128, 96), keep_ratio=False))(r)
    assert out['gt_normal_map'].shape == (96, 128, 3) and out['gt_seg_map'].shape == (96, 128)
    # nearest: every resized vector is one of the original ones (unit or zero)
    originals = {tuple(v) for v in normal.reshape(-1, 3).tolist()}
    assert {tuple(v) for v in out['gt_normal_map'].reshape(-1, 3).tolist()} <= originals
    np.random.seed(0)
    out = TRANSFORMS.build(dict(type='RandomCrop', crop_size=(40, 48)))(out)
    assert out['img'].shape == (40, 48, 3) and out['gt_normal_map'].shape == (40, 48, 3)
    assert out['gt_depth_map'].shape == (40, 48)


def test_pack_dense_inputs(nyu_root):
    r = loaded(nyu_root, 4)
    normal, depth, seg = r['gt_normal_map'], r['gt_depth_map'], r['gt_seg_map']
    packed = PackDenseInputs()(r)
    assert packed['inputs'].shape == (3, 64, 64)
    sample = packed['data_samples']
    assert sample.gt_normal_map.data.shape == (3, 64, 64)
    assert sample.gt_normal_map.data.dtype == torch.float32
    np.testing.assert_array_equal(sample.gt_normal_map.data.numpy(), normal.transpose(2, 0, 1))
    assert sample.gt_depth_map.data.shape == (1, 64, 64)
    np.testing.assert_array_equal(sample.gt_depth_map.data[0].numpy(), depth)
    assert sample.gt_sem_seg.data.shape == (1, 64, 64)
    assert sample.gt_sem_seg.data.dtype == torch.int64
    np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(), seg)
    for key in ('img_path', 'seg_map_path', 'depth_map_path', 'normal_map_path', 'ori_shape'):
        assert key in sample.metainfo


def test_dense_preprocessor_pads_each_field_with_its_value(nyu_root):
    init_default_scope('mmseg')
    pipeline = LOADS + [dict(type='mmmask.PackDenseInputs')]
    ds = DATASETS.build(dataset_cfg(nyu_root, 'test', pipeline))
    big = ds[0]
    np.random.seed(0)
    small = DATASETS.build(dataset_cfg(
        nyu_root, 'test', LOADS + [dict(type='RandomCrop', crop_size=(40, 48)),
                                   dict(type='mmmask.PackDenseInputs')]))[1]
    assert small['inputs'].shape == (3, 40, 48)
    data = dict(inputs=[big['inputs'], small['inputs']],
                data_samples=[big['data_samples'], small['data_samples']])
    pre = DenseDataPreprocessor(mean=[0, 0, 0], std=[1, 1, 1], size_divisor=32)
    out = pre(copy.deepcopy(data), training=True)
    assert out['inputs'].shape == (2, 3, 64, 64)
    s = out['data_samples'][1]
    assert s.gt_sem_seg.shape == s.gt_depth_map.shape == s.gt_normal_map.shape == (64, 64)
    assert s.padding_size == (0, 16, 0, 24) and tuple(s.pad_shape) == (64, 64)
    sem, depth, normal = s.gt_sem_seg.data, s.gt_depth_map.data, s.gt_normal_map.data
    assert (sem[:, 40:] == 255).all() and (sem[:, :, 48:] == 255).all()
    assert (depth[:, 40:] == 0).all() and (depth[:, :, 48:] == 0).all()
    assert (normal[:, 40:] == 0).all() and (normal[:, :, 48:] == 0).all()
    assert (depth[:, :40, :48] > 0).all()  # the real part is untouched
    torch.testing.assert_close(out['inputs'][1, :, :40, :48], small['inputs'].float())
    assert (out['inputs'][1, :, 40:] == 0).all()
    # the unpadded sample is unchanged
    torch.testing.assert_close(out['data_samples'][0].gt_normal_map.data,
                               big['data_samples'].gt_normal_map.data)
    # mmseg's own preprocessor pads depth with seg_pad_val (255): the pitfall this one fixes
    from mmseg.models import SegDataPreProcessor
    ref = SegDataPreProcessor(mean=[0, 0, 0], std=[1, 1, 1], size_divisor=32)(
        copy.deepcopy(data), training=True)
    assert (ref['data_samples'][1].gt_depth_map.data[:, 40:] == 255).all()
    torch.testing.assert_close(ref['inputs'], out['inputs'])
    # test time: as mmseg (stacked, ground truth untouched)
    test_out = pre(dict(inputs=[big['inputs']], data_samples=[big['data_samples']]),
                   training=False)
    assert test_out['inputs'].shape == (1, 3, 64, 64)


def test_config_evaluators_build():
    from mmengine.evaluator import Evaluator
    init_default_scope('mmseg')
    for name in ('toy_nyu_multitask.py', 'nyu_multitask.py'):
        cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', name))
        metrics = Evaluator(cfg.val_evaluator).metrics
        assert [type(m).__name__ for m in metrics] == [
            'IoUMetric', 'DepthMetric', 'SurfaceNormalMetric']
        for single in cfg.val_evaluator:  # each usable alone
            assert len(Evaluator(single).metrics) == 1
    real = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', 'nyu_multitask.py'))
    # NYUD-MT frames are already NYU's 425x560 border crop: no Eigen crop on top of it
    assert real.val_evaluator[1]['crop_type'] is None
    assert any(t['type'] == 'mmmask.RandomFlipDense' for t in real.train_pipeline)
    toy = Config.fromfile(TOY_CFG)
    assert not any('Flip' in t['type'] for t in toy.train_pipeline)
