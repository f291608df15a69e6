"""Fixes for the upstream stack on 2026 dependencies, applied once on ``import mmmask``.

Each patch repairs one documented breakage (see ``../shared/research/ecosystem.md``) and nothing else:

* ``weights_only``: torch>=2.6 loads checkpoints with ``weights_only=True``; mmengine 0.10.7's loaders
  do not pass the flag, so ``--resume``/``load_from`` die on pickled ``HistoryBuffer``/numpy objects.
  The local and http(s) checkpoint schemes are re-registered to load trusted files fully.
* CPU distributed training: mmengine's pytorch/slurm launchers call ``torch.cuda.set_device`` and
  default to NCCL; DDP is built with ``device_ids=[LOCAL_RANK]``. Without CUDA we initialise a gloo
  group and wrap with ``device_ids=None``.
* ``AmpOptimWrapper`` asserts an accelerator. Without one it becomes :class:`CPUAmpOptimWrapper`
  (bf16 autocast on CPU, no loss scaling), so ``--amp`` works on CPU-only machines.
* numpy 2 removed ``np.in1d``/``np.float`` which some upstream modules still use; those modules (and
  only those) get a numpy namespace with the old names restored, when they are imported.
* numpy 2 refuses ``np.uint8(negative)``, which mmcv's ``adjust_hue`` relies on for a negative hue
  shift (so mmpretrain's ``ColorJitter(hue=...)`` raised ``OverflowError`` on about half of the
  images): ``mmcv.adjust_hue`` gets the numpy-1 wrap-around (``int(255·h) mod 256``).
"""
import importlib.abc
import importlib.util
import os
import sys
import types
from typing import Dict

import numpy as np
import torch

_APPLIED = False


def has_accelerator() -> bool:
    from mmengine.device import (is_cuda_available, is_mlu_available, is_musa_available,
                                 is_npu_available)
    return (is_cuda_available() or is_npu_available() or is_mlu_available()
            or is_musa_available())


# --------------------------------------------------------------------------- weights_only
def _trusted_torch_load(f, map_location=None):
    return torch.load(f, map_location=map_location, weights_only=False)


def load_from_local(filename, map_location=None):
    """Load a local checkpoint (a file the user chose to trust: full unpickling)."""
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return _trusted_torch_load(filename, map_location)


def load_from_http(filename, map_location=None, model_dir=None, progress=True):
    """Download (once, into the torch hub cache) and load a checkpoint from a URL."""
    from mmengine.dist import get_dist_info
    rank, world_size = get_dist_info()
    kwargs = dict(model_dir=model_dir, map_location=map_location, progress=progress,
                  weights_only=False)
    if rank == 0:
        ckpt = torch.hub.load_state_dict_from_url(filename, **kwargs)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            ckpt = torch.hub.load_state_dict_from_url(filename, **kwargs)
    return ckpt


def _patch_checkpoint_loading() -> None:
    from mmengine.runner import checkpoint
    checkpoint.CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
    checkpoint.CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), loader=load_from_http, force=True)
    # open-mmlab://, torchvision://, mmcls:// resolve through these module-level names.
    checkpoint.load_from_local = load_from_local
    checkpoint.load_from_http = load_from_http


# --------------------------------------------------------------------------- CPU distributed
def _gloo_init(backend: str, rank: int, world_size: int, **kwargs) -> None:
    import torch.distributed as dist
    dist.init_process_group(backend='gloo' if backend == 'nccl' else backend, rank=rank,
                            world_size=world_size, **kwargs)


def shutdown_distributed() -> None:
    """Wait for every rank, then destroy the default process group (if one was initialised).

    Without it the ranks exit with gloo's worker threads still running; under load one of them
    can abort at interpreter exit ("terminate called without an active exception") after an
    otherwise successful run, failing ``dist_train.sh``. torch asks for this call anyway.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _patch_cpu_distributed() -> None:
    from mmengine.dist import utils as dist_utils
    from mmengine.runner import Runner

    orig_pytorch, orig_slurm = dist_utils._init_dist_pytorch, dist_utils._init_dist_slurm

    def init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if has_accelerator() or init_backend != 'torch':
            return orig_pytorch(backend, init_backend=init_backend, **kwargs)
        _gloo_init(backend, int(os.environ['RANK']), int(os.environ['WORLD_SIZE']), **kwargs)

    def init_dist_slurm(backend, port=None, init_backend='torch', **kwargs):
        if has_accelerator() or init_backend != 'torch':
            return orig_slurm(backend, port=port, init_backend=init_backend, **kwargs)
        import subprocess
        node_list = os.environ['SLURM_NODELIST']
        os.environ.setdefault('MASTER_PORT', str(port or 29500))
        os.environ.setdefault('MASTER_ADDR', subprocess.getoutput(
            f'scontrol show hostname {node_list} | head -n1'))
        os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
        os.environ['LOCAL_RANK'] = os.environ['SLURM_LOCALID']
        os.environ['RANK'] = os.environ['SLURM_PROCID']
        _gloo_init(backend, int(os.environ['RANK']), int(os.environ['WORLD_SIZE']), **kwargs)

    dist_utils._init_dist_pytorch = init_dist_pytorch
    dist_utils._init_dist_slurm = init_dist_slurm

    orig_wrap = Runner.wrap_model

    def wrap_model(self, model_wrapper_cfg, model):
        if self.distributed and not has_accelerator():
            from mmengine.registry import MODEL_WRAPPERS
            from torch.nn.parallel import DistributedDataParallel
            cfg = dict(model_wrapper_cfg or dict(
                type='MMDistributedDataParallel', broadcast_buffers=False,
                find_unused_parameters=self.cfg.get('find_unused_parameters', False)))
            cfg.setdefault('type', 'MMDistributedDataParallel')
            wrapper = MODEL_WRAPPERS.get(cfg['type'])
            if isinstance(wrapper, type) and issubclass(wrapper, DistributedDataParallel):
                cfg['device_ids'] = None  # CPU modules: DDP rejects device ids
            model_wrapper_cfg = cfg
        return orig_wrap(self, model_wrapper_cfg, model)

    Runner.wrap_model = wrap_model


# --------------------------------------------------------------------------- CPU AMP
def _patch_cpu_amp() -> None:
    from mmengine.optim import AmpOptimWrapper

    from ..engine.optim_wrappers import CPUAmpOptimWrapper

    def __new__(cls, *args, **kwargs):
        if cls is AmpOptimWrapper and not has_accelerator():
            cls = CPUAmpOptimWrapper
        return object.__new__(cls)

    AmpOptimWrapper.__new__ = __new__


# --------------------------------------------------------------------------- numpy 2
_NUMPY_ALIASES: Dict[str, Dict[str, object]] = {
    'mmpretrain.evaluation.metrics.retrieval': {'in1d': np.isin},
    'mmcv.ops.pixel_group': {'float': float},
    'mmdet.evaluation.functional.ytviseval': {'float': float},
}


def numpy_with(aliases: Dict[str, object]) -> types.ModuleType:
    """A stand-in for the ``numpy`` module that also has the given (removed) names."""
    shim = types.ModuleType('numpy')
    shim.__dict__.update(np.__dict__)
    shim.__dict__.update({k: v for k, v in aliases.items() if not hasattr(np, k)})
    return shim


class _NumpyAliasFinder(importlib.abc.MetaPathFinder):
    """Gives the listed modules :func:`numpy_with` as their ``np`` right after they execute."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _NUMPY_ALIASES:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        exec_module = spec.loader.exec_module

        def patched_exec(module):
            exec_module(module)
            module.np = numpy_with(_NUMPY_ALIASES[fullname])

        spec.loader.exec_module = patched_exec
        return spec


def _patch_numpy2() -> None:
    for name, aliases in _NUMPY_ALIASES.items():
        if name in sys.modules:  # imported before mmmask
            sys.modules[name].np = numpy_with(aliases)
    if not any(isinstance(f, _NumpyAliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _NumpyAliasFinder())


def _wrapped_hue_shift(hue_factor: float) -> np.uint8:
    """numpy 1's ``np.uint8(hue_factor * 255)``: truncate, then wrap modulo 256."""
    return np.uint8(int(hue_factor * 255) % 256)


def adjust_hue(img: np.ndarray, hue_factor: float, backend=None) -> np.ndarray:
    """``mmcv.adjust_hue`` with numpy 1's uint8 wrap-around of a negative shift (same outputs)."""
    import cv2
    import mmcv.image.photometric as photometric
    if hue_factor >= 0:
        return _ORIGINAL_ADJUST_HUE(img, hue_factor, backend=backend)
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f'hue_factor:{hue_factor} is not in [-0.5, 0.5].')
    if not (isinstance(img, np.ndarray) and img.ndim in (2, 3)):
        raise TypeError('img should be ndarray with dim=[2 or 3].')
    backend = backend or photometric.imread_backend
    if backend not in ('cv2', 'pillow'):
        raise ValueError(f'backend: {backend} is not supported.'
                         f"Supported backends are 'cv2', 'pillow'")
    shift = _wrapped_hue_shift(hue_factor)
    if backend == 'pillow':
        from PIL import Image
        if img.dtype != np.uint8:
            raise TypeError('adjust_hue: the pillow backend needs a uint8 image')
        pil = Image.fromarray(img[..., ::-1], mode='RGB')
        h, s, v = pil.convert('HSV').split()
        np_h = np.array(h, dtype=np.uint8)
        with np.errstate(over='ignore'):
            np_h += shift
        pil = Image.merge('HSV', (Image.fromarray(np_h, 'L'), s, v)).convert(pil.mode)
        return np.array(pil, dtype=img.dtype)[..., ::-1]
    dtype = img.dtype
    h, s, v = cv2.split(cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_BGR2HSV_FULL))
    h = h.astype(np.uint8)
    with np.errstate(over='ignore'):
        h += shift
    return cv2.cvtColor(cv2.merge([h, s, v]), cv2.COLOR_HSV2BGR_FULL).astype(dtype)


_ORIGINAL_ADJUST_HUE = None


def _patch_adjust_hue() -> None:
    global _ORIGINAL_ADJUST_HUE
    import mmcv
    import mmcv.image
    import mmcv.image.photometric as photometric
    if photometric.adjust_hue is adjust_hue:
        return
    _ORIGINAL_ADJUST_HUE = photometric.adjust_hue
    for module in (mmcv, mmcv.image, photometric):
        module.adjust_hue = adjust_hue


def apply_patches() -> None:
    """Apply every patch once (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    _patch_checkpoint_loading()
    _patch_cpu_distributed()
    _patch_cpu_amp()
    _patch_numpy2()
    _patch_adjust_hue()
    _APPLIED = True
