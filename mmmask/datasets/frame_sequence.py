"""Frame sequences for temporal self-supervision (TOV-VICReg, Goulão & Oliveira 2023).

Every sample is one observation at time t of a sequence together with its neighbours t−1 and t+1,
as the official ``tov_vicreg/dataset/dqn_dataset.py`` (``DQNReplayDataset(add_adjacent=True)``):
an observation is ``frame_stack`` consecutive frames (stacked as channels, 3 for Atari), and its
neighbours are the observations ``neighbour_offset`` frames before and after (default
``frame_stack``: the adjacent, non-overlapping stacks), clamped at the sequence ends.

Two on-disk layouts (see ``configs/tov_vicreg/README.md``):

1. JSON index (``ann_file``; the built-in toy ``seq`` world)::

       {"sequences": [{"id": 0, "labels": [9, 4],
                       "frames": ["train/0000/00.png", ...]   # or [{"path": ...}, ...]
                       }, ...]}

   paths relative to ``data_root`` + ``data_prefix['img_path']``; ``labels`` is optional.
2. Folders (``ann_file=''``): ``data_root/data_prefix['img_path']/<sequence>/<frame files>``, one
   sub-folder per sequence (e.g. one Atari game × DQN-Replay checkpoint), frames in file-name order.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from mmengine.fileio import get

from mmmask.registry import DATASETS, TRANSFORMS

__all__ = ['FrameSequenceDataset', 'LoadFrameWithNeighbours', 'neighbour_indices']

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp')


def neighbour_indices(num_frames: int, frame_stack: int = 1, offset: Optional[int] = None,
                      boundary: str = 'clamp') -> List[tuple]:
    """``(t, t_prev, t_next)`` start frames of every observation of a ``num_frames`` sequence.

    Observation ``i`` covers frames ``[i, i + frame_stack)``; there are
    ``num_frames − frame_stack + 1`` of them. ``boundary='clamp'`` (official) keeps every
    observation and clamps its neighbours to the first/last one (so the first observation is its
    own t−1); ``'inside'`` keeps only observations with both neighbours inside the sequence.
    """
    if frame_stack < 1:
        raise ValueError(f'frame_stack must be >= 1, got {frame_stack}')
    offset = frame_stack if offset is None else offset
    if offset < 1:
        raise ValueError(f'neighbour_offset must be >= 1, got {offset}')
    if boundary not in ('clamp', 'inside'):
        raise ValueError(f"boundary must be 'clamp' (official) or 'inside', got {boundary!r}")
    n_obs = num_frames - frame_stack + 1
    out = []
    for i in range(max(n_obs, 0)):
        prev, nxt = i - offset, i + offset
        if boundary == 'inside' and (prev < 0 or nxt > n_obs - 1):
            continue
        out.append((i, max(0, prev), min(n_obs - 1, nxt)))
    return out


@DATASETS.register_module()
class FrameSequenceDataset(BaseDataset):
    """Observations with their temporal neighbours (t, t−1, t+1), for TOV-VICReg.

    Args:
        ann_file: JSON index (layout 1 of the module docstring) or ``''`` for the folder layout.
        frame_stack: frames per observation (stacked as channels by
            :class:`LoadFrameWithNeighbours`; official Atari: 3).
        neighbour_offset: frames between t and its neighbours (default ``frame_stack``).
        boundary: ``'clamp'`` (official) or ``'inside'`` (see :func:`neighbour_indices`).
        max_frames: keep at most this many frames per sequence (official
            ``dqn_single_dataset_max_size``).
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments (``data_root``,
            ``data_prefix=dict(img_path=...)``, ``pipeline``, ...).

    Each data info has ``img_path``, ``prev_path``, ``next_path`` (a path, or a list of
    ``frame_stack`` paths), ``sequence``, ``frame_index`` and ``clip_labels`` (may be empty).
    """

    METAINFO: dict = dict()

    def __init__(self, ann_file: str = '', frame_stack: int = 1,
                 neighbour_offset: Optional[int] = None, boundary: str = 'clamp',
                 max_frames: Optional[int] = None, **kwargs):
        neighbour_indices(frame_stack + 2, frame_stack, neighbour_offset, boundary)  # validate
        self.frame_stack, self.neighbour_offset = frame_stack, neighbour_offset
        self.boundary, self.max_frames = boundary, max_frames
        kwargs.setdefault('data_prefix', dict(img_path=''))
        super().__init__(ann_file=ann_file, **kwargs)

    def _sequences_from_json(self) -> List[dict]:
        with open(self.ann_file) as f:
            index = json.load(f)
        if not isinstance(index, dict) or not isinstance(index.get('sequences'), list):
            raise ValueError(f'{self.ann_file}: a frame-sequence index is a JSON object with a '
                             '"sequences" list (see mmmask/datasets/frame_sequence.py)')
        seqs = []
        for k, seq in enumerate(index['sequences']):
            frames = seq.get('frames') if isinstance(seq, dict) else None
            if not frames:
                raise ValueError(f'{self.ann_file}: sequence {k} has no "frames" list')
            paths = [fr['path'] if isinstance(fr, dict) else fr for fr in frames]
            seqs.append(dict(id=seq.get('id', k), frames=paths, labels=seq.get('labels', [])))
        return seqs

    def _sequences_from_folders(self, root: str) -> List[dict]:
        if not osp.isdir(root):
            raise FileNotFoundError(f'FrameSequenceDataset: no folder {root}; give ann_file (JSON '
                                    'index) or data_prefix=dict(img_path=<folder of sequences>)')
        seqs = []
        for name in sorted(os.listdir(root)):
            folder = osp.join(root, name)
            if not osp.isdir(folder):
                continue
            frames = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMG_EXTENSIONS))
            if frames:
                seqs.append(dict(id=name, frames=[osp.join(name, f) for f in frames], labels=[]))
        if not seqs:
            raise FileNotFoundError(f'FrameSequenceDataset: {root} has no sub-folders of frames '
                                    f'({", ".join(IMG_EXTENSIONS)})')
        return seqs

    def load_data_list(self) -> List[dict]:
        prefix = self.data_prefix.get('img_path', '') or self.data_root
        if self.ann_file and osp.isfile(self.ann_file):
            seqs = self._sequences_from_json()
        elif self.ann_file and not osp.isdir(self.ann_file):
            raise FileNotFoundError(f'FrameSequenceDataset: ann_file {self.ann_file} not found')
        else:
            seqs = self._sequences_from_folders(prefix)
        k = self.frame_stack
        data_list = []
        for seq in seqs:
            frames = [osp.join(prefix, p) for p in seq['frames']]
            if self.max_frames is not None:
                frames = frames[:self.max_frames]

            def obs(i: int) -> Union[str, List[str]]:
                return frames[i] if k == 1 else frames[i:i + k]

            for t, prev, nxt in neighbour_indices(len(frames), k, self.neighbour_offset,
                                                  self.boundary):
                data_list.append(dict(img_path=obs(t), prev_path=obs(prev), next_path=obs(nxt),
                                      sequence=seq['id'], frame_index=t,
                                      clip_labels=list(seq['labels'])))
        if not data_list:
            raise ValueError(f'FrameSequenceDataset: no observation with neighbours in '
                             f'{len(seqs)} sequence(s) (frame_stack={k}, boundary='
                             f'{self.boundary!r}); the sequences are too short')
        return data_list


@TRANSFORMS.register_module()
class LoadFrameWithNeighbours(BaseTransform):
    """Load an observation and its neighbours: ``img_path`` → ``img``, ``prev_path`` →
    ``img_prev``, ``next_path`` → ``img_next`` (uint8 ``H×W×C``).

    A list of paths (a frame stack) is loaded frame by frame in ``color_type`` and stacked along
    the channel axis (official Atari observations: 3 grayscale frames → 3 channels).

    Args:
        color_type: ``'color'`` (BGR, like ``LoadImageFromFile``) or ``'grayscale'``.
        imdecode_backend: mmcv decoding backend.
        with_neighbours: False loads only ``img`` (evaluation of single frames).
    """

    KEYS = (('img_path', 'img'), ('prev_path', 'img_prev'), ('next_path', 'img_next'))

    def __init__(self, color_type: str = 'color', imdecode_backend: str = 'cv2',
                 with_neighbours: bool = True):
        self.color_type, self.imdecode_backend = color_type, imdecode_backend
        self.with_neighbours = with_neighbours

    def _load_one(self, path: str) -> np.ndarray:
        img = mmcv.imfrombytes(get(path), flag=self.color_type, backend=self.imdecode_backend)
        if img is None:
            raise ValueError(f'LoadFrameWithNeighbours: cannot decode {path}')
        return img

    def load(self, paths: Union[str, Sequence[str]]) -> np.ndarray:
        if isinstance(paths, str):
            return self._load_one(paths)
        frames = [self._load_one(p) for p in paths]
        frames = [f[..., None] if f.ndim == 2 else f for f in frames]
        return np.concatenate(frames, axis=-1)

    def transform(self, results: Dict) -> Dict:
        keys = self.KEYS if self.with_neighbours else self.KEYS[:1]
        missing = [src for src, _ in keys if src not in results]
        if missing:
            raise KeyError(f'LoadFrameWithNeighbours needs {missing} (a FrameSequenceDataset '
                           'sample); use with_neighbours=False for single frames')
        for src, dst in keys:
            img = self.load(results[src])
            results[dst] = img[..., None] if img.ndim == 2 else img
        results['img_shape'] = results['img'].shape[:2]
        results['ori_shape'] = results['img'].shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(color_type={self.color_type!r}, '
                f'with_neighbours={self.with_neighbours})')
