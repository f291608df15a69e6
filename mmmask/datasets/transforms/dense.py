"""Dense multi-task transforms (semantic + depth + surface normals) for NYUD-v2-style data.

Surface normals are camera-frame unit vectors ``(x right, y down, z forward)`` stored as an
``HxWx3`` float32 ``gt_normal_map`` (the zero vector where undefined) and listed in ``seg_fields``
like mmseg's ``gt_depth_map``, so that mmseg's geometric transforms move them with the image:

- ``RandomCrop`` crops them (its ``cat_max_ratio`` only looks at ``gt_seg_map``);
- ``Resize`` resizes every seg field with **nearest** interpolation and does nothing else: the
  normals are neither re-normalised nor re-oriented (nearest keeps unit vectors unit and invalid
  zeros zero; a non-uniform resize strictly changes the true normals' orientation, which we
  ignore, as the usual NYU pipelines do);
- mmseg ``RandomFlip`` would flip the map but not the vectors: use :class:`RandomFlipDense`,
  which also negates x on a horizontal flip and y on a vertical one.
"""
from typing import Optional, Sequence

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import BaseTransform, to_tensor
from mmengine.structures import PixelData
from mmseg.datasets.transforms import PackSegInputs, RandomFlip

from ...registry import TRANSFORMS

#: ``results`` keys that hold surface-normal maps.
NORMAL_KEYS = ('gt_normal_map', )


@TRANSFORMS.register_module()
class LoadNormalAnnotation(BaseTransform):
    """Load a surface-normal PNG (``(n + 1) / 2 * max`` per channel) as unit-ish float vectors.

    The file's channels, in ``channel_order`` (RGB by default, as Bae et al. and the toy world
    store them; OpenCV decodes BGR, which is reversed here), are x, y, z of the camera-frame
    normal. Each is mapped to ``v / max * 2 - 1`` with ``max`` = 255 for 8-bit and 65535 for 16-bit
    files. Pixels whose raw value is (0, 0, 0) are invalid and become the zero vector.

    Required keys: ``normal_map_path``, ``seg_fields``.
    Added keys: ``gt_normal_map`` (HxWx3 float32); ``'gt_normal_map'`` is appended to
    ``seg_fields``.

    Args:
        channel_order: ``'rgb'`` if the file's R, G, B channels are x, y, z; ``'bgr'`` if B, G, R.
        normalize: re-normalise the valid vectors to unit length (8-bit quantisation leaves
            lengths within ~1% of 1). Defaults to False (the decoded value as is).
        imdecode_backend: mmcv decoding backend.
        backend_args: mmengine file backend arguments.
    """

    def __init__(self,
                 channel_order: str = 'rgb',
                 normalize: bool = False,
                 imdecode_backend: str = 'cv2',
                 backend_args: Optional[dict] = None) -> None:
        if channel_order not in ('rgb', 'bgr'):
            raise ValueError(f"channel_order={channel_order!r} must be 'rgb' or 'bgr'")
        self.channel_order = channel_order
        self.normalize = normalize
        self.imdecode_backend = imdecode_backend
        self.backend_args = backend_args.copy() if backend_args else None

    def transform(self, results: dict) -> dict:
        raw = mmcv.imfrombytes(
            fileio.get(results['normal_map_path'], backend_args=self.backend_args),
            flag='unchanged', backend=self.imdecode_backend)
        if raw is None or raw.ndim != 3 or raw.shape[2] < 3:
            raise ValueError(f"{results['normal_map_path']}: expected a 3-channel normal map, "
                             f"got shape {None if raw is None else raw.shape}")
        raw = raw[..., :3]
        if self.imdecode_backend == 'cv2':  # OpenCV decodes in B, G, R order
            raw = raw[..., ::-1]
        if self.channel_order == 'bgr':
            raw = raw[..., ::-1]
        if raw.dtype == np.uint8:
            max_val = 255.0
        elif raw.dtype == np.uint16:
            max_val = 65535.0
        else:
            raise ValueError(f"{results['normal_map_path']}: unsupported dtype {raw.dtype}")
        valid = np.any(raw != 0, axis=-1, keepdims=True)
        normal = raw.astype(np.float32) / max_val * 2 - 1
        if self.normalize:
            normal = normal / np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-6)
        results['gt_normal_map'] = np.ascontiguousarray(np.where(valid, normal, 0),
                                                        dtype=np.float32)
        results.setdefault('seg_fields', [])
        if 'gt_normal_map' not in results['seg_fields']:
            results['seg_fields'].append('gt_normal_map')
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(channel_order={self.channel_order!r}, '
                f'normalize={self.normalize}, imdecode_backend={self.imdecode_backend!r}, '
                f'backend_args={self.backend_args})')


def flip_normals(normal: np.ndarray, direction: str) -> np.ndarray:
    """Mirror an HxWx3 normal map in ``direction`` and negate the components it mirrors.

    horizontal: x -> -x; vertical: y -> -y; diagonal (both): x, y -> -x, -y. Zero vectors stay
    zero.
    """
    flipped = mmcv.imflip(normal, direction=direction).copy()
    axes = dict(horizontal=[0], vertical=[1], diagonal=[0, 1])[direction]
    flipped[..., axes] = -flipped[..., axes]
    flipped[flipped == 0] = 0  # no -0.0
    return flipped


@TRANSFORMS.register_module()
class RandomFlipDense(RandomFlip):
    """mmseg ``RandomFlip`` that also flips surface normals correctly.

    Flips the image, boxes and every map in ``seg_fields``; normal maps (``normal_keys``) are
    mirrored and their x (horizontal), y (vertical) or x and y (diagonal) components negated.
    ``swap_seg_labels`` only applies to integer maps (semantic labels), never to depth or normals.

    Args:
        normal_keys: the ``results`` keys that hold HxWx3 normal maps.
        **kwargs: ``prob``, ``direction``, ``swap_seg_labels`` of mmseg ``RandomFlip``.
    """

    def __init__(self, normal_keys: Sequence[str] = NORMAL_KEYS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.normal_keys = tuple(normal_keys)

    def _flip(self, results: dict) -> None:
        direction = results['flip_direction']
        results['img'] = mmcv.imflip(results['img'], direction=direction)
        img_shape = results['img'].shape[:2]
        if results.get('gt_bboxes', None) is not None:
            results['gt_bboxes'] = self._flip_bbox(results['gt_bboxes'], img_shape, direction)
        for key in results.get('seg_fields', []):
            value = results.get(key, None)
            if value is None:
                continue
            if key in self.normal_keys:
                results[key] = flip_normals(value, direction)
            elif np.issubdtype(value.dtype, np.integer):
                results[key] = self._flip_seg_map(value, direction=direction).copy()
            else:
                results[key] = mmcv.imflip(value, direction=direction).copy()
        results['swap_seg_labels'] = self.swap_seg_labels

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f', normal_keys={self.normal_keys})'


@TRANSFORMS.register_module()
class PackDenseInputs(PackSegInputs):
    """mmseg ``PackSegInputs`` that also packs surface normals.

    As mmseg: ``gt_seg_map`` -> ``gt_sem_seg`` (1xHxW int64), ``gt_depth_map`` -> ``gt_depth_map``
    (1xHxW float). Added: ``gt_normal_map`` (HxWx3) -> ``gt_normal_map`` PixelData (3xHxW float32).
    """

    def __init__(self,
                 meta_keys=('img_path', 'seg_map_path', 'depth_map_path', 'normal_map_path',
                            'ori_shape', 'img_shape', 'pad_shape', 'scale_factor', 'flip',
                            'flip_direction', 'reduce_zero_label')):
        super().__init__(meta_keys=meta_keys)

    def transform(self, results: dict) -> dict:
        packed = super().transform(results)
        normal = results.get('gt_normal_map', None)
        if normal is not None:
            if normal.ndim != 3 or normal.shape[2] != 3:
                raise ValueError(f'gt_normal_map must be HxWx3, got {normal.shape}')
            data = to_tensor(np.ascontiguousarray(normal.transpose(2, 0, 1),
                                                  dtype=np.float32))
            packed['data_samples'].set_data(dict(gt_normal_map=PixelData(data=data)))
        return packed
