"""GTA5 / SYNTHIA source datasets and their converters (tools/dataset_converters/{gta,synthia}.py):
raw labels -> Cityscapes trainIds (255 = ignore) + rare-class-sampling statistics, read back by
mmmask.GTADataset / mmmask.SynthiaDataset / mmmask.UDADataset; the mIoU16/13 metric; the UDA
dataset configs."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from PIL import Image

from conftest import REPO, run_tool

import mmmask  # noqa: F401
from mmmask.datasets import (SYNTHIA_13_CLASSES, SYNTHIA_16_CLASSES, GTADataset,
                             SynthiaDataset)
from mmmask.evaluation import ClassSubsetIoUMetric
from mmmask.registry import DATASETS

H, W = 6, 8
# Cityscapes label ids (GTA) / SYNTHIA class ids -> expected trainIds; others -> 255.
GTA_CASES = {7: 0, 8: 1, 11: 2, 26: 13, 33: 18, 0: 255, 1: 255, 34: 255, 9: 255, 255: 255}
SYN_CASES = {3: 0, 4: 1, 2: 2, 21: 3, 15: 6, 1: 10, 8: 13, 19: 15, 12: 17, 11: 18, 16: 9, 0: 255,
             13: 255, 14: 255, 22: 255, 300: 255}


def _raw(cases, seed):
    rng = np.random.default_rng(seed)
    return rng.choice(np.array(list(cases), dtype=np.int64), size=(H, W))


def _expected(raw, cases):
    return np.vectorize(cases.get)(raw).astype(np.uint8)


def _image(path, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(path)


def _fake_gta(root):
    os.makedirs(osp.join(root, 'images'))
    os.makedirs(osp.join(root, 'labels'))
    raws = {}
    for k, stem in enumerate(('00001', '00002', '00003')):
        _image(osp.join(root, 'images', stem + '.png'), k)
        raw = _raw(GTA_CASES, k)
        label = Image.frombytes('P', (W, H), raw.astype(np.uint8).tobytes())
        palette = np.random.default_rng(9).integers(0, 256, 768).tolist()  # colours != ids
        label.putpalette(palette)
        label.save(osp.join(root, 'labels', stem + '.png'))
        raws[stem] = raw
    return raws


def _fake_synthia(root):
    os.makedirs(osp.join(root, 'RGB'))
    os.makedirs(osp.join(root, 'GT', 'LABELS'))
    raws = {}
    for k, stem in enumerate(('0000000', '0000001')):
        _image(osp.join(root, 'RGB', stem + '.png'), k)
        raw = _raw(SYN_CASES, 10 + k)
        rng = np.random.default_rng(k)
        # 16-bit RGB file: R = class id, G = instance id, B = 0; cv2 writes BGR.
        bgr = np.stack([np.zeros_like(raw), rng.integers(0, 5000, raw.shape), raw], -1)
        cv2.imwrite(osp.join(root, 'GT', 'LABELS', stem + '.png'), bgr.astype(np.uint16))
        raws[stem] = raw
    return raws


def _check_stats(root, label_dir, raws, cases):
    with open(osp.join(root, 'sample_class_stats.json')) as f:
        stats = json.load(f)
    assert [s['file'] for s in stats] == [
        f'{label_dir}/{stem}_labelTrainIds.png' for stem in sorted(raws)]
    for s, stem in zip(stats, sorted(raws)):
        exp = _expected(raws[stem], cases)
        want = {str(c): int((exp == c).sum()) for c in np.unique(exp) if c != 255}
        assert {k: v for k, v in s.items() if k != 'file'} == want
    with open(osp.join(root, 'sample_class_stats_dict.json')) as f:
        by_file = json.load(f)
    assert set(by_file) == {s['file'] for s in stats}
    with open(osp.join(root, 'samples_with_class.json')) as f:
        with_class = json.load(f)
    for c, rows in with_class.items():
        for file, n in rows:
            assert by_file[file][c] == n
    return stats


def _read_back(dataset, raws, cases):
    from mmseg.datasets.transforms import LoadAnnotations
    assert len(dataset) == len(raws)
    load = LoadAnnotations()
    for i, stem in enumerate(sorted(raws)):
        info = dict(dataset.get_data_info(i), seg_fields=[])
        assert info['img_path'].endswith(stem + '.png')
        assert info['seg_map_path'].endswith(stem + '_labelTrainIds.png')
        np.testing.assert_array_equal(load(info)['gt_seg_map'], _expected(raws[stem], cases))


def test_gta_converter_and_dataset(tmp_path):
    root = str(tmp_path / 'gta')
    raws = _fake_gta(root)
    run_tool(['dataset_converters/gta.py', root, '--nproc', '2'], cwd=str(tmp_path))
    _check_stats(root, 'labels', raws, GTA_CASES)
    dataset = GTADataset(data_root=root, data_prefix=dict(img_path='images',
                                                          seg_map_path='labels'))
    assert dataset.metainfo['classes'][13] == 'car' and len(dataset.metainfo['classes']) == 19
    _read_back(dataset, raws, GTA_CASES)
    # The statistics drive mmmask.UDADataset's rare class sampling (matched by file name).
    # (mmcv's LoadImageFromFile has no mmseg-prefixed name: build in mmseg's scope, as a config)
    pipe = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')]
    src = dict(type='mmmask.GTADataset', data_root=root, pipeline=pipe,
               data_prefix=dict(img_path='images', seg_map_path='labels'))
    with DefaultScope.overwrite_default_scope('mmseg'):
        uda = DATASETS.build(dict(
            type='mmmask.UDADataset', source=src, target=src,
            rare_class_sampling=dict(min_pixels=1, class_temp=0.01, min_crop_ratio=0.5,
                                     stats_file=osp.join(root, 'sample_class_stats.json'))))
        assert set(uda.rcs['classes']) == {0, 1, 2, 13, 18}
        item = uda[0]
    assert item['inputs'].shape == (3, H, W) and item['target_inputs'].shape == (3, H, W)


def test_synthia_converter_and_dataset(tmp_path):
    root = str(tmp_path / 'synthia')
    raws = _fake_synthia(root)
    out = str(tmp_path / 'stats')
    run_tool(['dataset_converters/synthia.py', root, '--nproc', '1', '-o', out],
             cwd=str(tmp_path))
    _check_stats(out, 'GT/LABELS', raws, SYN_CASES)
    dataset = SynthiaDataset(data_root=root,
                             data_prefix=dict(img_path='RGB', seg_map_path='GT/LABELS'))
    _read_back(dataset, raws, SYN_CASES)


def test_class_subset_iou_metric():
    classes = SynthiaDataset.METAINFO['classes']
    assert len(SYNTHIA_16_CLASSES) == 16 and len(SYNTHIA_13_CLASSES) == 13
    assert set(classes) - set(SYNTHIA_16_CLASSES) == {'terrain', 'truck', 'train'}
    iou = np.linspace(0.1, 0.9, 19)
    union = torch.full((19,), 100.)
    inter = torch.tensor(iou * 100, dtype=torch.float32)
    metric = ClassSubsetIoUMetric(
        class_subsets=dict(mIoU16=SYNTHIA_16_CLASSES, mIoU13=SYNTHIA_13_CLASSES))
    metric.dataset_meta = dict(classes=classes)
    res = metric.compute_metrics([(inter, union, union, union)])
    idx16 = [classes.index(c) for c in SYNTHIA_16_CLASSES]
    idx13 = [classes.index(c) for c in SYNTHIA_13_CLASSES]
    assert res['mIoU'] == pytest.approx(np.round(iou.mean() * 100, 2), abs=0.011)
    assert res['mIoU16'] == pytest.approx(iou[idx16].mean() * 100, abs=0.011)
    assert res['mIoU13'] == pytest.approx(iou[idx13].mean() * 100, abs=0.011)


@pytest.mark.parametrize('name,source,scale', [
    ('uda_gta_to_cityscapes_512x512.py', 'mmmask.GTADataset', (1280, 720)),
    ('uda_synthia_to_cityscapes_512x512.py', 'mmmask.SynthiaDataset', (1280, 760)),
])
def test_uda_dataset_configs(name, source, scale):
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', name))
    train = cfg.train_dataloader
    assert train.batch_size == 2 and train.dataset.type == 'mmmask.UDADataset'
    assert set(train.dataset) == {'type', 'source', 'target'}  # RCS off unless a config sets it
    assert train.dataset.source.type == source
    assert train.dataset.source.pipeline[2].scale == scale
    assert train.dataset.target.pipeline[2].scale == (1024, 512)
    assert cfg.rcs_cfg.min_pixels == 3000 and cfg.rcs_cfg.class_temp == 0.01
    assert cfg.rcs_cfg.stats_file.startswith(train.dataset.source.data_root)
    bench = 'gta2cs' if 'gta' in name else 'syn2cs'
    daformer = Config.fromfile(osp.join(REPO, 'configs', 'uda',
                                        f'daformer_mitb5_1xb2-40k_{bench}-512x512.py'))
    assert daformer.train_dataloader.dataset.rare_class_sampling == cfg.rcs_cfg
    assert cfg.val_dataloader.dataset.data_prefix.img_path == 'leftImg8bit/val'
    if 'synthia' in name:
        assert cfg.val_evaluator.type == 'mmmask.ClassSubsetIoUMetric'
        assert tuple(cfg.val_evaluator.class_subsets.mIoU16) == SYNTHIA_16_CLASSES
        assert tuple(cfg.val_evaluator.class_subsets.mIoU13) == SYNTHIA_13_CLASSES
