"""``type='mmmask.ToyData'``: build an upstream dataset over the built-in toy world."""
from typing import Optional

from ..registry import DATASETS
from .toy import WORLDS, ensure_toy_data, toy_metainfo


@DATASETS.register_module(name='ToyData')
def build_toy_data(world: str, reader: str, data_root: Optional[str] = None, **kwargs):
    """Generate toy ``world`` on first use, then build the upstream ``reader`` dataset class on it.

    The returned object *is* the upstream dataset (e.g. ``mmseg.BaseSegDataset``,
    ``mmdet.CocoPanopticDataset``, ``mmpretrain.CustomDataset``): this function only makes sure the
    files exist at ``data_root`` (default ``data/toy/<world>``) and fills in the toy class names
    unless ``metainfo`` is given. Every other keyword goes to ``reader`` unchanged.

    Example::

        dataset = dict(type='mmmask.ToyData', world='seg', reader='mmseg.BaseSegDataset',
                       data_root='data/toy/seg', data_prefix=dict(img_path='images/training',
                       seg_map_path='annotations/training'), reduce_zero_label=True, pipeline=[...])
    """
    if world not in WORLDS:
        raise KeyError(f'ToyData: unknown world {world!r}; choose one of {WORLDS}')
    root = ensure_toy_data(world, data_root or f'data/toy/{world}')
    meta = toy_metainfo(world)
    if meta and 'metainfo' not in kwargs:
        kwargs['metainfo'] = meta
    return DATASETS.build(dict(type=reader, data_root=root + '/', **kwargs))
