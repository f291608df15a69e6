"""FrameSequenceDataset / LoadFrameWithNeighbours (TOV-VICReg data): the official neighbour
indexing (dqn_dataset.py), both on-disk layouts, frame stacking and the four-view pipeline."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmmask.datasets.frame_sequence import (FrameSequenceDataset, LoadFrameWithNeighbours,
                                            neighbour_indices)
from mmmask.registry import DATASETS, TRANSFORMS
from mmmask.utils import register_all_modules

register_all_modules()


def test_neighbour_indices_official_clamp():
    """dqn_dataset.py: effective size n - k + 1; before = max(0, i - k), after =
    min(eff - 1, i + k)."""
    n, k = 10, 3
    out = neighbour_indices(n, k)
    assert len(out) == n - k + 1
    for i, prev, nxt in out:
        assert prev == max(0, i - k) and nxt == min(n - k, i + k)
    assert out[0] == (0, 0, 3)  # the first observation is its own t-1 (official)
    inside = neighbour_indices(8, 1, boundary='inside')
    assert inside == [(t, t - 1, t + 1) for t in range(1, 7)]
    with pytest.raises(ValueError, match='boundary'):
        neighbour_indices(8, 1, boundary='wrap')
    with pytest.raises(ValueError, match='frame_stack'):
        neighbour_indices(8, 0)


def _write_frames(root, n_seq=2, n_frames=7, size=12):
    for s in range(n_seq):
        os.makedirs(osp.join(root, 'frames', f'game{s}'))
        for t in range(n_frames):
            img = np.full((size, size), 10 * t + s, np.uint8)
            cv2.imwrite(osp.join(root, 'frames', f'game{s}', f'{t:06d}.png'), img)


def test_folder_layout_with_frame_stacks(tmp_path):
    _write_frames(str(tmp_path))
    ds = FrameSequenceDataset(data_root=str(tmp_path), data_prefix=dict(img_path='frames'),
                              frame_stack=3, pipeline=[
                                  dict(type='mmmask.LoadFrameWithNeighbours',
                                       color_type='grayscale')])
    assert len(ds) == 2 * (7 - 3 + 1)
    sample = ds[1]  # game0, observation 1: frames 1-3, prev 0-2 (clamped), next 4-6
    assert sample['img'].shape == (12, 12, 3)
    assert sample['img'][0, 0].tolist() == [10, 20, 30]
    assert sample['img_prev'][0, 0].tolist() == [0, 10, 20]
    assert sample['img_next'][0, 0].tolist() == [40, 50, 60]
    assert sample['sequence'] == 'game0' and sample['frame_index'] == 1


def test_json_layout_toy_seq_four_views(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    init_default_scope('mmpretrain')
    view = [dict(type='Resize', scale=16)]
    ds = DATASETS.build(dict(
        type='mmmask.ToyData', world='seq', reader='mmmask.FrameSequenceDataset',
        data_root='data/toy/seq', ann_file='val.json', boundary='inside',
        pipeline=[dict(type='mmmask.LoadFrameWithNeighbours'),
                  dict(type='mmmask.MultiViewWithKeys', transforms=[view, view, view],
                       num_views=[2, 1, 1], sources=[None, 'img_prev', 'img_next']),
                  dict(type='PackInputs')]))
    with open(osp.join('data/toy/seq/val.json')) as f:
        index = json.load(f)
    assert len(ds) == len(index['sequences']) * (index['sequence_length'] - 2)
    info = ds.get_data_info(0)
    assert info['img_path'].endswith('val/0000/01.png')
    assert info['prev_path'].endswith('val/0000/00.png')
    assert info['next_path'].endswith('val/0000/02.png')
    assert info['clip_labels'] == index['sequences'][0]['labels']
    out = ds[0]
    assert len(out['inputs']) == 4 and all(x.shape == (3, 16, 16) for x in out['inputs'])
    # views 2-4 are resized frames t, t-1, t+1: they differ (the digits move)
    assert (out['inputs'][2].float() - out['inputs'][3].float()).abs().sum() > 0


def test_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match='ann_file'):
        FrameSequenceDataset(ann_file=str(tmp_path / 'missing.json'))
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match='"sequences"'):
        FrameSequenceDataset(ann_file=str(bad))
    short = tmp_path / 'short.json'
    short.write_text(json.dumps(dict(sequences=[dict(frames=['a.png', 'b.png'])])))
    with pytest.raises(ValueError, match='too short'):
        FrameSequenceDataset(ann_file=str(short), boundary='inside')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='sub-folders'):
        FrameSequenceDataset(data_root=str(tmp_path), data_prefix=dict(img_path='empty'))
    load = TRANSFORMS.build(dict(type='mmmask.LoadFrameWithNeighbours'))
    assert isinstance(load, LoadFrameWithNeighbours)
    with pytest.raises(KeyError, match='with_neighbours=False'):
        load(dict(img_path=str(tmp_path / 'x.png')))
