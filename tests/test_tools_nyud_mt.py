"""tools/dataset_converters/nyud_mt.py: NYUD-MT (MTL-PyTorch / ATRC / InvPT format) -> mmmask."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import ONE_THREAD, run_tool

import mmmask  # noqa: F401  (registers the mmmask transforms and datasets)
from mmmask.datasets import NYUv2MultiTaskDataset
from mmmask.datasets.transforms.dense import LoadNormalAnnotation

TOOL = 'dataset_converters/nyud_mt.py'
H, W = 8, 10
SPLITS = dict(train=['0001', '0002'], val=['0003'])


def _normals(rng: np.random.Generator) -> np.ndarray:
    n = rng.normal(size=(H, W, 3))
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    n[0, 0] = 0  # invalid: the zero vector
    return n.astype(np.float32)


def _fake_nyud_mt(root: str) -> dict:
    """A tiny NYUD-MT tree: gt_sets/*.txt, images/*.jpg, segmentation/*.png (0..40, 0 = void),
    depth/*.npy (float metres, 0 = invalid), normals/*.npy (HxWx3 float), edge/*.npy."""
    rng = np.random.default_rng(0)
    for d in ('gt_sets', 'images', 'segmentation', 'depth', 'normals', 'edge'):
        os.makedirs(osp.join(root, d))
    frames = {}
    for split, stems in SPLITS.items():
        with open(osp.join(root, 'gt_sets', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(stems) + '\n')
        for stem in stems:
            img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
            Image.fromarray(img).save(osp.join(root, 'images', stem + '.jpg'))
            seg = rng.integers(0, 41, (H, W)).astype(np.uint8)
            seg[0, :3] = (0, 1, 40)
            Image.fromarray(seg).save(osp.join(root, 'segmentation', stem + '.png'))
            depth = rng.uniform(0.5, 9.5, (H, W)).astype(np.float32)
            depth[1, 1] = 0
            np.save(osp.join(root, 'depth', stem + '.npy'), depth)
            normal = _normals(rng)
            np.save(osp.join(root, 'normals', stem + '.npy'), normal)
            np.save(osp.join(root, 'edge', stem + '.npy'), np.zeros((H, W), np.float32))
            frames[stem] = dict(split=split, seg=seg, depth=depth, normal=normal)
    return frames


def test_nyud_mt_converter(tmp_path):
    src, out = str(tmp_path / 'NYUD_MT'), str(tmp_path / 'nyu')
    frames = _fake_nyud_mt(src)
    proc = run_tool([TOOL, src, '-o', out], cwd=str(tmp_path), env=ONE_THREAD, timeout=120)
    assert 'train -> train: 2 frames' in proc.stdout and 'val -> test: 1 frames' in proc.stdout
    assert 'SOURCE orientation' in proc.stdout  # the loud orientation warning

    for stem, f in frames.items():
        folder = 'test' if f['split'] == 'val' else 'train'
        with open(osp.join(src, 'images', stem + '.jpg'), 'rb') as a, \
                open(osp.join(out, 'images', folder, stem + '.jpg'), 'rb') as b:
            assert a.read() == b.read()

        label = cv2.imread(osp.join(out, 'semantic40', folder, stem + '.png'),
                           cv2.IMREAD_UNCHANGED)
        assert label.dtype == np.uint8 and label.ndim == 2
        np.testing.assert_array_equal(label, f['seg'])  # 0 = unlabelled, 1..40 = classes
        assert tuple(label[0, :3]) == (0, 1, 40)

        depth = cv2.imread(osp.join(out, 'annotations', folder, stem + '.png'),
                           cv2.IMREAD_UNCHANGED)
        assert depth.dtype == np.uint16 and depth.shape == (H, W)
        np.testing.assert_array_equal(depth, np.rint(f['depth'] * 1000).astype(np.uint16))
        assert depth[1, 1] == 0 and depth[depth > 0].min() >= 500

        results = LoadNormalAnnotation().transform(dict(
            normal_map_path=osp.join(out, 'normals', folder, stem + '.png'), seg_fields=[]))
        decoded = results['gt_normal_map']
        assert decoded.shape == (H, W, 3)
        np.testing.assert_array_equal(decoded[0, 0], 0)  # invalid stays invalid
        valid = np.linalg.norm(f['normal'], axis=-1) > 0
        assert valid.sum() == H * W - 1
        assert np.abs(decoded[valid] - f['normal'][valid]).max() <= 2 / 255

    for split, folder, n in (('train', 'train', 2), ('val', 'test', 1)):
        ds = NYUv2MultiTaskDataset(
            data_root=out, reduce_zero_label=True, pipeline=[], lazy_init=False,
            data_prefix=dict(img_path=f'images/{folder}', seg_map_path=f'semantic40/{folder}',
                             depth_map_path=f'annotations/{folder}',
                             normal_map_path=f'normals/{folder}'))
        assert len(ds) == n
        for i in range(n):
            info = ds.get_data_info(i)
            for key in ('img_path', 'seg_map_path', 'depth_map_path', 'normal_map_path'):
                assert osp.isfile(info[key]), (key, info[key])


def test_nyud_mt_negate_axes(tmp_path):
    src, out = str(tmp_path / 'NYUD_MT'), str(tmp_path / 'nyu')
    frames = _fake_nyud_mt(src)
    run_tool([TOOL, src, '-o', out, '--splits', 'val', '--negate-normal-axes', 'y', 'z'],
             cwd=str(tmp_path), env=ONE_THREAD, timeout=120)
    assert not osp.exists(osp.join(out, 'images', 'train'))
    decoded = LoadNormalAnnotation().transform(dict(
        normal_map_path=osp.join(out, 'normals', 'test', '0003.png'), seg_fields=[]))
    expected = frames['0003']['normal'] * np.array([1, -1, -1], np.float32)
    assert np.abs(decoded['gt_normal_map'][1:] - expected[1:]).max() <= 2 / 255


@pytest.mark.parametrize('breakage', ['no_depth_dir', 'missing_file', 'no_split'])
def test_nyud_mt_bad_layout(tmp_path, breakage):
    src = str(tmp_path / 'NYUD_MT')
    _fake_nyud_mt(src)
    if breakage == 'no_depth_dir':
        os.rename(osp.join(src, 'depth'), osp.join(src, 'depths'))
        expected = "missing folder(s) ['depth']"
    elif breakage == 'missing_file':
        os.remove(osp.join(src, 'normals', '0002.npy'))
        expected = 'normals/0002.npy'
    else:
        os.remove(osp.join(src, 'gt_sets', 'val.txt'))
        expected = 'val.txt not found'
    proc = run_tool([TOOL, src, '-o', str(tmp_path / 'nyu')], cwd=str(tmp_path),
                    env=ONE_THREAD, timeout=120, check=False)
    assert proc.returncode == 2
    assert expected in proc.stderr and 'gt_sets/<split>.txt' in proc.stderr
