"""Multi-view wrapper that keeps per-view keys (mmpretrain's ``MultiView`` keeps only ``img``).

PixPro needs each view's crop box (``coord``), TOV-VICReg the role of each view (anchor views of
frame t, neighbours t-1 / t+1); both come from the same wrapper: every view runs its own pipeline
on a copy of the input and every key listed in ``keys`` is collected into a list, one entry per
view, next to the list of images. ``PackInputs(algorithm_keys=[...])`` then carries the lists into
the data sample.
"""
import copy
from typing import Dict, List, Optional, Sequence, Union

from mmcv.transforms import BaseTransform, Compose

from mmmask.registry import TRANSFORMS


@TRANSFORMS.register_module()
class MultiViewWithKeys(BaseTransform):
    """Apply ``num_views[i]`` copies of pipeline ``transforms[i]`` and keep per-view keys.

    Args:
        transforms: one pipeline (a list of transform configs) per group of views.
        num_views: views per pipeline (an int when there is one pipeline).
        keys: result keys collected per view besides ``img`` (e.g. ``('coord',)``). A key a view's
            pipeline did not produce raises a ``KeyError`` naming the pipeline, unless
            ``allow_missing`` (then ``None`` is stored for that view).
        sources: optional per-pipeline input key: pipeline ``i`` reads its image from
            ``results[sources[i]]`` (e.g. neighbouring frames loaded under other keys) instead of
            ``results['img']``.
        allow_missing: see ``keys``.

    Output: ``results['img']`` is the list of view images; ``results[key]`` the list of each view's
    value for every key in ``keys``; ``results['view_group']`` the pipeline index of each view.
    """

    def __init__(self, transforms: Sequence[Sequence[dict]],
                 num_views: Union[int, Sequence[int]], keys: Sequence[str] = (),
                 sources: Optional[Sequence[Optional[str]]] = None,
                 allow_missing: bool = False) -> None:
        if isinstance(num_views, int):
            num_views = [num_views]
        num_views = list(num_views)
        if len(num_views) != len(transforms):
            raise ValueError(f'MultiViewWithKeys: {len(transforms)} pipelines but num_views '
                             f'{num_views}; give one view count per pipeline')
        if sources is not None and len(sources) != len(transforms):
            raise ValueError('MultiViewWithKeys: `sources` needs one entry (or None) per pipeline')
        self.num_views = num_views
        self.keys = tuple(keys)
        self.sources = list(sources) if sources is not None else [None] * len(transforms)
        self.allow_missing = allow_missing
        self.pipelines = [Compose(list(t)) for t in transforms]

    def transform(self, results: Dict) -> Dict:
        images: List = []
        collected: Dict[str, List] = {k: [] for k in self.keys}
        groups: List[int] = []
        for g, (pipeline, n) in enumerate(zip(self.pipelines, self.num_views)):
            for _ in range(n):
                view = copy.deepcopy(results)
                src = self.sources[g]
                if src is not None:
                    if src not in results:
                        raise KeyError(f'MultiViewWithKeys: pipeline {g} reads `{src}`, which the '
                                       f'loading transforms did not produce')
                    view['img'] = view[src]
                    view['img_shape'] = view['img'].shape[:2]
                    view['ori_shape'] = view['img'].shape[:2]
                out = pipeline(view)
                if out is None:
                    raise RuntimeError(f'MultiViewWithKeys: pipeline {g} dropped the sample')
                images.append(out['img'])
                groups.append(g)
                for k in self.keys:
                    if k not in out and not self.allow_missing:
                        raise KeyError(f'MultiViewWithKeys: pipeline {g} did not produce `{k}`; '
                                       f'add the transform that writes it or drop it from keys')
                    collected[k].append(out.get(k))
        results['img'] = images
        results.update(collected)
        results['view_group'] = groups
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_views={self.num_views}, keys={self.keys}, '
                f'sources={self.sources})')
