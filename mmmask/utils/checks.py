"""Early, actionable errors for the usual ways a run goes wrong before it starts."""
import os
import os.path as osp
import re
from contextlib import contextmanager
from typing import Iterator, List, Optional

INSTALL_HINT = 'run `bash tools/install.sh` (it builds mmcv 2.1.0 with its compiled ops)'


class SetupError(RuntimeError):
    """A configuration or environment problem, with the fix in its message."""


def require_mmcv_ops() -> None:
    """mmseg/mmdet models and datasets need mmcv's compiled ops (``mmcv._ext``)."""
    try:
        import mmcv._ext  # noqa: F401
    except Exception as e:  # ImportError, or an undefined symbol from a torch mismatch
        raise SetupError(
            f'mmcv was installed without its compiled ops or for another torch ({e}). mmseg and '
            f'mmdet need them: {INSTALL_HINT}. Do not use mmcv-lite.') from e


def check_device(requested: str = 'auto') -> str:
    """Validate ``--device``: 'auto' (CUDA if present), 'cpu' or 'cuda'. Returns the device used."""
    import torch
    if requested not in ('auto', 'cpu', 'cuda'):
        raise SetupError(f"--device must be 'auto', 'cpu' or 'cuda', got {requested!r}")
    if requested == 'cuda' and not torch.cuda.is_available():
        raise SetupError(
            'CUDA was requested (--device cuda) but torch sees no CUDA device '
            f'(torch {torch.__version__}, CUDA_VISIBLE_DEVICES='
            f'{os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")}). Use --device cpu or auto '
            '(mmmask trains on CPU, uses gloo for multi-process runs and bf16 for --amp).')
    if requested == 'cpu':
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
        return 'cpu'
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def _dataset_cfgs(cfg) -> Iterator[dict]:
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        stack = [loader.get('dataset')]
        while stack:
            ds = stack.pop()
            if isinstance(ds, dict):
                yield ds
                stack.extend(v for k, v in ds.items() if k in ('dataset', 'datasets'))
            elif isinstance(ds, (list, tuple)):
                stack.extend(ds)


def check_data_roots(cfg) -> None:
    """Fail before the runner starts when a (non-toy) dataset's ``data_root`` does not exist."""
    missing: List[str] = []
    for ds in _dataset_cfgs(cfg):
        if not isinstance(ds, dict) or 'ToyData' in str(ds.get('type', '')):
            continue  # toy data is generated on first use
        root = ds.get('data_root')
        if root and '://' not in str(root) and not osp.exists(root):
            missing.append(f"{ds.get('type')} at '{root}'")
    if missing:
        raise SetupError(
            'dataset root(s) not found: ' + '; '.join(sorted(set(missing))) + '. Download and '
            'prepare the dataset as described in the config folder\'s README.md (and mmseg/mmdet/'
            'mmpretrain\'s dataset preparation guides), or point `data_root` at it with '
            '--cfg-options. To try mmmask without downloads use a toy config (configs/*/*toy*.py); '
            'the toy data is generated on first use or with `python tools/misc/make_toy_data.py`.')


def _pretrained_paths(node, where: str = 'model') -> Iterator[tuple]:
    """Local weight files a model config loads: ``init_cfg=Pretrained`` files, and ``X_checkpoint``
    keys (whose sub-model ``X`` then takes its weights from there, not from its own init_cfg)."""
    if isinstance(node, dict):
        init = node.get('init_cfg')
        inits = init if isinstance(init, list) else [init]
        for item in inits:
            if isinstance(item, dict) and item.get('type') == 'Pretrained' and item.get('checkpoint'):
                yield f'{where}.init_cfg', item['checkpoint']
        loaded = {k[:-len('_checkpoint')] for k, v in node.items()
                  if k.endswith('_checkpoint') and isinstance(v, str) and v}
        for key, value in node.items():
            if key in loaded:
                continue
            if key.endswith('_checkpoint') and isinstance(value, str) and value:
                yield f'{where}.{key}', value
            elif key != 'init_cfg':
                yield from _pretrained_paths(value, f'{where}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _pretrained_paths(value, f'{where}[{i}]')


def check_checkpoints(cfg) -> None:
    """Fail before the runner starts when a local ``init_cfg=Pretrained`` file is missing."""
    missing = [f'{where}: {path}' for where, path in _pretrained_paths(cfg.get('model', {}))
               if '://' not in str(path) and not osp.exists(osp.expanduser(str(path)))]
    if missing:
        raise SetupError(
            'pretrained checkpoint(s) not found: ' + '; '.join(missing) + '. Convert the official '
            'weights with the converter named in the config folder\'s README.md '
            '(tools/model_converters/<method>2mmmask.py), or train from scratch with '
            '--cfg-options model.backbone.init_cfg=None.')


_UNKNOWN = re.compile(r"(\S+) is not in the (\S+) registry")


def unknown_type_hint(message: str) -> Optional[str]:
    """A hint for mmengine's "X is not in the scope::name registry" error, or None."""
    m = _UNKNOWN.search(message)
    if m is None:
        return None
    name = m.group(1).strip('`\'"')
    short = name.split('.')[-1]
    import mmmask.registry as reg
    for registry in vars(reg).values():
        if getattr(registry, 'name', None) and hasattr(registry, 'get'):
            reg_name = m.group(2).split('::')[-1]
            if registry.name != reg_name:
                continue
            try:
                found = registry.get(f'mmmask.{short}')
            except Exception:
                found = None
            if found is not None:
                return (f"'{short}' is an mmmask module: write type='mmmask.{short}' and add "
                        "custom_imports=dict(imports=['mmmask.models', 'mmmask.datasets']) to "
                        'your config (or set default_scope=\'mmmask\').')
    return (f"'{name}' is not registered. Check the spelling; if it comes from another "
            "OpenMMLab package, prefix its scope (e.g. 'mmseg.', 'mmdet.', 'mmpretrain.', "
            "'mmmask.') and list the package in custom_imports.")


@contextmanager
def friendly_build_errors():
    """Re-raise registry misses with the fix (``mmmask.`` prefix / ``custom_imports``)."""
    try:
        yield
    except KeyError as e:
        hint = unknown_type_hint(str(e))
        if hint is None:
            raise
        raise SetupError(f'{e.args[0] if e.args else e}\nHint: {hint}') from e
