"""NYU-Depth-v2 multi-task data (semantic NYU-40 + metric depth + surface normals) for PolyMaX.

Layout (the 795/654 labelled frames; the toy world ``data/toy/nyu`` has the same shape)::

    data/nyu/
        images/{train,test}/<stem>.jpg        RGB frames (480x640; 425x560 in the NYUD-MT release)
        semantic40/{train,test}/<stem>.png    uint8 NYU-40 labels, 0 = unlabelled, k = class k-1
        annotations/{train,test}/<stem>.png   uint16 depth in millimetres, 0 = invalid
        normals/{train,test}/<stem>.png       RGB ``(n + 1) / 2 * 255`` of the camera-frame normal
                                              (x right, y down, z forward); (0, 0, 0) = invalid

Every label folder is optional; a sample gets ``seg_map_path`` / ``depth_map_path`` /
``normal_map_path`` for each folder named in ``data_prefix``, matched to the image by file stem
(relative path without the suffix). The loading transforms (mmseg ``LoadAnnotations``,
``LoadDepthAnnotation`` and mmmask ``LoadNormalAnnotation``) append their maps to ``seg_fields``,
which starts empty.
"""
import os.path as osp
from typing import List, Optional, Sequence, Union

import mmengine
import mmengine.fileio as fileio
from mmseg.datasets import BaseSegDataset

from ..registry import DATASETS

#: The 40 NYU-40 classes of Gupta et al. (CVPR'13), in label order 1..40 (0 = unlabelled).
NYU40_CLASSES = ('wall', 'floor', 'cabinet', 'bed', 'chair', 'sofa', 'table', 'door', 'window',
                 'bookshelf', 'picture', 'counter', 'blinds', 'desk', 'shelves', 'curtain',
                 'dresser', 'pillow', 'mirror', 'floor mat', 'clothes', 'ceiling', 'books',
                 'refrigerator', 'television', 'paper', 'towel', 'shower curtain', 'box',
                 'whiteboard', 'person', 'night stand', 'toilet', 'sink', 'lamp', 'bathtub', 'bag',
                 'otherstructure', 'otherfurniture', 'otherprop')


def _voc_colour(label: int) -> tuple:
    """The PASCAL VOC bit-interleaved colour of ``label`` (distinct and deterministic)."""
    r = g = b = 0
    for shift in range(7, -1, -1):
        r |= ((label >> 0) & 1) << shift
        g |= ((label >> 1) & 1) << shift
        b |= ((label >> 2) & 1) << shift
        label >>= 3
    return (r, g, b)


#: One colour per NYU-40 class (the VOC colour map of labels 1..40).
NYU40_PALETTE = [_voc_colour(k + 1) for k in range(len(NYU40_CLASSES))]

#: The label keys of ``data_prefix`` and the ``data_info`` path each one fills in.
_LABEL_KEYS = ('seg_map_path', 'depth_map_path', 'normal_map_path')


@DATASETS.register_module()
class NYUv2MultiTaskDataset(BaseSegDataset):
    """NYUD-v2 with any subset of semantic (NYU-40), depth and surface-normal labels.

    Args:
        data_prefix: folders of the images (``img_path``) and of the labels (``seg_map_path``,
            ``depth_map_path``, ``normal_map_path``; each optional: leave it out, or set it to
            None, when the task is not used).
        img_suffix: suffix of the images.
        seg_map_suffix: suffix of the semantic label maps.
        depth_map_suffix: suffix of the depth maps.
        normal_map_suffix: suffix of the normal maps.
        reduce_zero_label: map label 0 (unlabelled in NYU-40) to 255 and k to k-1. True for the
            real data; the toy world stores 0-based labels with 255 unlabelled (set False).
        metainfo: as in mmseg. ``classes`` that are a subset of the NYU-40 names select and
            re-index those classes (mmseg's ``label_map``); any other class list *replaces* the
            label space (the labels on disk are indices into it, no remapping), e.g. the 12 toy
            classes. Without a ``palette`` a replacing class list gets mmseg's seeded random one.
        **kwargs: the other arguments of mmseg ``BaseSegDataset`` (``ann_file`` lists stems,
            one per line, relative to ``img_path``).
    """
    METAINFO = dict(classes=NYU40_CLASSES, palette=NYU40_PALETTE)

    def __init__(self,
                 data_prefix: dict = dict(
                     img_path='images', seg_map_path='semantic40',
                     depth_map_path='annotations', normal_map_path='normals'),
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 depth_map_suffix: str = '.png',
                 normal_map_suffix: str = '.png',
                 reduce_zero_label: bool = True,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        unknown = set(data_prefix) - {'img_path', *_LABEL_KEYS}
        if unknown:
            raise KeyError(f'NYUv2MultiTaskDataset: unknown data_prefix keys {sorted(unknown)}; '
                           f"use 'img_path' and any of {_LABEL_KEYS}")
        if 'img_path' not in data_prefix or data_prefix['img_path'] is None:
            raise KeyError("NYUv2MultiTaskDataset: data_prefix needs 'img_path'")
        data_prefix = {k: v for k, v in data_prefix.items() if v is not None}
        self.depth_map_suffix = depth_map_suffix
        self.normal_map_suffix = normal_map_suffix
        if metainfo is not None and 'classes' in metainfo and 'palette' not in metainfo \
                and not self._selects_nyu40(metainfo['classes']):
            metainfo = dict(metainfo, palette=[])  # not NYU-40's palette; mmseg draws one
        super().__init__(
            data_prefix=data_prefix,
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            metainfo=metainfo,
            **kwargs)

    @classmethod
    def _selects_nyu40(cls, classes: Optional[Sequence[str]]) -> bool:
        return classes is not None and set(classes).issubset(cls.METAINFO['classes'])

    @classmethod
    def get_label_map(cls, new_classes: Optional[Sequence] = None) -> Union[dict, None]:
        """mmseg's label map for a subset of the NYU-40 classes; None for a replacing class list."""
        if new_classes is not None and not cls._selects_nyu40(new_classes):
            return None
        return super().get_label_map(new_classes)

    def _info(self, stem: str, img_path: str) -> dict:
        info = dict(img_path=img_path)
        suffixes = dict(seg_map_path=self.seg_map_suffix, depth_map_path=self.depth_map_suffix,
                        normal_map_path=self.normal_map_suffix)
        for key in _LABEL_KEYS:
            folder = self.data_prefix.get(key, None)
            if folder is not None:
                info[key] = osp.join(folder, stem + suffixes[key])
        info['label_map'] = self.label_map
        info['reduce_zero_label'] = self.reduce_zero_label
        info['seg_fields'] = []
        return info

    def load_data_list(self) -> List[dict]:
        """One ``data_info`` per image (sorted by path), with the paths of its label maps."""
        img_dir = self.data_prefix['img_path']
        if self.ann_file and not osp.isdir(self.ann_file):
            if not osp.isfile(self.ann_file):
                raise FileNotFoundError(f'ann_file {self.ann_file} not found')
            stems = [line.strip() for line in mmengine.list_from_file(
                self.ann_file, backend_args=self.backend_args) if line.strip()]
            return [self._info(s, osp.join(img_dir, s + self.img_suffix)) for s in stems]
        data_list = []
        for img in fileio.list_dir_or_file(dir_path=img_dir, list_dir=False,
                                           suffix=self.img_suffix, recursive=True,
                                           backend_args=self.backend_args):
            data_list.append(self._info(img[:-len(self.img_suffix)], osp.join(img_dir, img)))
        return sorted(data_list, key=lambda x: x['img_path'])
