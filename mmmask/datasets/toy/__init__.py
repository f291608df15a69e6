"""The built-in toy world: deterministic data made from real handwritten digits, generated on first use.

The data is written once into a cache folder (``$MMMASK_CACHE/toy/v<N>``, default ``~/.cache/mmmask``)
and exposed at the path a config names (default ``data/toy/<world>``, relative to the working
directory as upstream ``data/...`` roots are) through a symlink, so that evaluators which take file
paths (COCO metrics) and the upstream dataset classes see an ordinary dataset folder.
"""
import fcntl
import os
import os.path as osp
import shutil
import tempfile
from typing import Optional

from .formats import SIZES, WRITERS
from .scenes import CLASSES, PALETTE, STUFF_CLASSES, THING_CLASSES

#: Bump when the generator's output changes: old caches are then regenerated, never reused.
GENERATOR_VERSION = 1
WORLDS = tuple(WRITERS)
_STAMP = '.mmmask_toy_complete'


def cache_dir() -> str:
    base = os.environ.get('MMMASK_CACHE', osp.join(osp.expanduser('~'), '.cache', 'mmmask'))
    return osp.join(base, 'toy', f'v{GENERATOR_VERSION}')


def _complete(path: str) -> bool:
    stamp = osp.join(path, _STAMP)
    if not osp.isfile(stamp):
        return False
    with open(stamp) as f:
        return f.read().strip() == str(GENERATOR_VERSION)


def generate(world: str, out_dir: str) -> str:
    """Write toy ``world`` into ``out_dir`` (atomically; concurrent callers wait for the first)."""
    if world not in WRITERS:
        raise KeyError(f'unknown toy world {world!r}; choose one of {WORLDS}')
    out_dir = osp.abspath(out_dir)
    parent = osp.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    with open(osp.join(parent, f'.{osp.basename(out_dir)}.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _complete(out_dir):
            return out_dir
        tmp = tempfile.mkdtemp(prefix=f'.{world}-', dir=parent)
        try:
            WRITERS[world](tmp)
            with open(osp.join(tmp, _STAMP), 'w') as f:
                f.write(str(GENERATOR_VERSION))
            if osp.lexists(out_dir):
                shutil.rmtree(out_dir) if osp.isdir(out_dir) and not osp.islink(out_dir) \
                    else os.remove(out_dir)
            os.rename(tmp, out_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def ensure_toy_data(world: str, data_root: Optional[str] = None) -> str:
    """Make toy ``world`` available at ``data_root`` (default: the cache) and return that path.

    The data lives in the cache; ``data_root``, if given and absent, becomes a symlink to it. An
    existing complete folder at ``data_root`` (e.g. generated with ``tools/misc/make_toy_data.py``)
    is used as is.
    """
    cached = osp.join(cache_dir(), world)
    if data_root is None:
        return generate(world, cached) if not _complete(cached) else cached
    data_root = osp.abspath(data_root.rstrip('/'))
    if _complete(data_root):
        return data_root
    if osp.islink(data_root) or not osp.exists(data_root):
        if not _complete(cached):
            generate(world, cached)
        os.makedirs(osp.dirname(data_root), exist_ok=True)
        tmp_link = f'{data_root}.{os.getpid()}.lnk'
        os.symlink(cached, tmp_link)
        os.replace(tmp_link, data_root)  # atomic, also over a stale link
        return data_root
    raise FileExistsError(
        f'{data_root} exists but is not a complete toy {world!r} dataset (no {_STAMP} stamp of '
        f'version {GENERATOR_VERSION}). Remove it, or run '
        f'`python tools/misc/make_toy_data.py {world} --out {data_root}`.')


def toy_metainfo(world: str) -> dict:
    """Class names (and palette) the upstream dataset classes need for toy ``world``."""
    if world == 'cls':
        return dict(classes=tuple(str(d) for d in range(10)))
    if world == 'coco':
        return dict(classes=CLASSES, thing_classes=THING_CLASSES, stuff_classes=STUFF_CLASSES,
                    palette=PALETTE)
    if world in ('nyu', 'seq'):
        # NYUDataset keeps its scene categories (toy files are all 'playroom'); clips are unlabelled.
        return {}
    return dict(classes=CLASSES, palette=PALETTE)


__all__ = ['CLASSES', 'THING_CLASSES', 'STUFF_CLASSES', 'PALETTE', 'SIZES', 'WORLDS',
           'GENERATOR_VERSION', 'cache_dir', 'generate', 'ensure_toy_data', 'toy_metainfo']
