"""The toy world: deterministic, valid, and read by the upstream dataset classes."""
import hashlib
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmmask.datasets.toy import (CLASSES, SIZES, STUFF_CLASSES, THING_CLASSES, ensure_toy_data,
                                 generate, toy_metainfo)
from mmmask.registry import DATASETS


def tree_digest(root: str) -> str:
    h = hashlib.sha256()
    for d, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            path = osp.join(d, f)
            h.update(osp.relpath(path, root).encode())
            with open(path, 'rb') as fh:
                h.update(fh.read())
    return h.hexdigest()


@pytest.mark.parametrize('world', ['seg', 'seq'])
def test_generation_is_deterministic(tmp_path, world):
    a = generate(world, str(tmp_path / 'a'))
    b = generate(world, str(tmp_path / 'b'))
    assert tree_digest(a) == tree_digest(b)


def test_ensure_links_to_cache_and_refuses_foreign_folders(tmp_path):
    root = ensure_toy_data('seq', str(tmp_path / 'data' / 'seq'))
    assert osp.islink(root) and osp.isfile(osp.join(root, 'train.json'))
    assert ensure_toy_data('seq', root) == root  # idempotent
    foreign = tmp_path / 'other'
    foreign.mkdir()
    (foreign / 'x.txt').write_text('not toy data')
    with pytest.raises(FileExistsError, match='make_toy_data'):
        ensure_toy_data('seq', str(foreign))


def build(cfg):
    return DATASETS.build(cfg)


def test_seg_read_by_upstream_classes(tmp_path):
    init_default_scope('mmseg')
    root = ensure_toy_data('seg', str(tmp_path / 'seg'))
    common = dict(data_root=root, data_prefix=dict(img_path='images/validation',
                                                   seg_map_path='annotations/validation'),
                  pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')])
    ds = build(dict(type='mmseg.BaseSegDataset', img_suffix='.jpg', seg_map_suffix='.png',
                    reduce_zero_label=True, metainfo=toy_metainfo('seg'), **common))
    assert len(ds) == SIZES['seg']['val'] and ds.metainfo['classes'] == CLASSES
    labels = np.unique(np.concatenate([np.unique(ds[i]['gt_seg_map']) for i in range(40)]))
    # digits 0-9, sky 10, ground 11 all occur; 255 marks occluded crumbs (ADE's label 0)
    assert set(range(12)) <= set(labels.tolist()) <= set(range(12)) | {255}
    # ADE20KDataset itself reads the same folders (with its own 150 names)
    ade = build(dict(type='mmseg.ADE20KDataset', **common))
    assert len(ade) == len(ds) and ade[0]['img'].shape == (64, 64, 3)


def test_coco_read_by_upstream_classes(tmp_path):
    init_default_scope('mmdet')
    root = ensure_toy_data('coco', str(tmp_path / 'coco')) + '/'
    inst = build(dict(type='mmdet.CocoDataset', data_root=root, metainfo=dict(classes=THING_CLASSES),
                      ann_file='annotations/instances_val.json', data_prefix=dict(img='val/'),
                      pipeline=[dict(type='LoadImageFromFile'),
                                dict(type='LoadAnnotations', with_bbox=True, with_mask=True)]))
    assert len(inst) > 0.9 * SIZES['coco']['val']
    item = inst[0]
    assert len(item['gt_bboxes']) == len(item['gt_masks']) > 0
    assert item['gt_bboxes_labels'].max() < 10
    pan = build(dict(type='mmdet.CocoPanopticDataset', data_root=root,
                     metainfo=toy_metainfo('coco'), ann_file='annotations/panoptic_val.json',
                     data_prefix=dict(img='val/', seg='annotations/panoptic_val/'),
                     pipeline=[dict(type='LoadImageFromFile'),
                               dict(type='LoadPanopticAnnotations')]))
    assert len(pan) == SIZES['coco']['val']
    item = pan[0]
    sem = item['gt_seg_map']
    # things keep their class index, stuff follows (mmdet order), 255 = VOID
    assert set(np.unique(sem).tolist()) <= set(range(len(CLASSES))) | {255}
    assert len(item['gt_masks']) == len(item['gt_bboxes_labels'])
    # PNG ids and segments_info agree
    with open(osp.join(root, 'annotations/panoptic_val.json')) as f:
        ann = json.load(f)['annotations'][0]
    png = cv2.imread(osp.join(root, 'annotations/panoptic_val', ann['file_name']))[..., ::-1]
    png = png.astype(np.int64)
    ids = png[..., 0] + 256 * png[..., 1] + 65536 * png[..., 2]
    assert sorted(s['id'] for s in ann['segments_info']) == sorted(set(np.unique(ids)) - {0})
    for s in ann['segments_info']:
        assert (ids == s['id']).sum() == s['area']
        assert (s['category_id'] - 1 < len(THING_CLASSES)) == \
            (CLASSES[s['category_id'] - 1] not in STUFF_CLASSES)


def test_nyu_read_by_upstream_class(tmp_path):
    init_default_scope('mmseg')
    root = ensure_toy_data('nyu', str(tmp_path / 'nyu'))
    ds = build(dict(type='mmseg.NYUDataset', data_root=root,
                    data_prefix=dict(img_path='images/test', depth_map_path='annotations/test'),
                    pipeline=[dict(type='LoadImageFromFile'),
                              dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3)]))
    assert len(ds) == SIZES['nyu']['test']
    item = ds[0]
    depth = item['gt_depth_map']
    assert depth.shape == (64, 64) and 0.5 < depth.min() and depth.max() <= 10.0
    assert item['category_id'] == ds.metainfo['classes'].index('playroom')
    name = osp.basename(item['img_path']).replace('.jpg', '.png')
    normals = cv2.imread(osp.join(root, 'normals', 'test', name))[..., ::-1] / 255.0 * 2 - 1
    valid = np.abs(normals).sum(-1) < 2.9  # undefined (sky) pixels are stored as 0 -> (-1,-1,-1)
    norms = np.linalg.norm(normals[valid], axis=-1)
    assert valid.mean() > 0.3 and np.allclose(norms, 1, atol=0.03)
    sem = cv2.imread(osp.join(root, 'semantic', 'test', name), cv2.IMREAD_UNCHANGED)
    assert (valid == (sem != 10)).mean() > 0.99  # normals undefined exactly on the sky


def test_cls_and_seq_read_by_custom_dataset(tmp_path):
    init_default_scope('mmpretrain')
    root = ensure_toy_data('cls', str(tmp_path / 'cls'))
    ds = build(dict(type='mmpretrain.CustomDataset', data_root=root, data_prefix='val',
                    pipeline=[dict(type='LoadImageFromFile')]))
    assert len(ds) == SIZES['cls']['val'] and ds.metainfo['classes'] == tuple('0123456789')
    counts = np.bincount([ds.get_data_info(i)['gt_label'] for i in range(len(ds))], minlength=10)
    assert counts.min() > 0.5 * counts.mean()  # roughly balanced
    seq_root = ensure_toy_data('seq', str(tmp_path / 'seq'))
    frames = build(dict(type='mmpretrain.CustomDataset', data_root=seq_root, data_prefix='val',
                        with_label=False, pipeline=[dict(type='LoadImageFromFile')]))
    with open(osp.join(seq_root, 'val.json')) as f:
        meta = json.load(f)
    assert len(frames) == len(meta['sequences']) * meta['sequence_length']
    clip = meta['sequences'][0]['frames']
    first = cv2.imread(osp.join(seq_root, clip[0]['path'])).astype(int)
    last = cv2.imread(osp.join(seq_root, clip[-1]['path'])).astype(int)
    assert clip[0]['boxes'] != clip[-1]['boxes'] and np.abs(first - last).mean() > 1


def test_uda_pair_has_a_domain_shift(tmp_path):
    root = ensure_toy_data('uda', str(tmp_path / 'uda'))

    def mean_colour(domain):
        d = osp.join(root, domain, 'images', 'training')
        imgs = [cv2.imread(osp.join(d, f)) for f in sorted(os.listdir(d))[:30]]
        return np.mean([i.reshape(-1, 3).mean(0) for i in imgs], 0)

    assert np.abs(mean_colour('source') - mean_colour('target')).max() > 30
    for domain in ('source', 'target'):
        n = len(os.listdir(osp.join(root, domain, 'annotations', 'validation')))
        assert n == SIZES['uda']['val']


def test_toydata_builds_the_upstream_class(tmp_path):
    init_default_scope('mmseg')
    ds = DATASETS.build(dict(
        type='mmmask.ToyData', world='seg', reader='mmseg.BaseSegDataset',
        data_root=str(tmp_path / 'seg'), reduce_zero_label=True,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation')))
    from mmseg.datasets import BaseSegDataset
    assert type(ds) is BaseSegDataset and ds.metainfo['classes'] == CLASSES
    with pytest.raises(KeyError, match='unknown world'):
        DATASETS.build(dict(type='mmmask.ToyData', world='imagenet', reader='x'))
