"""Environment report printed by ``tools/install.sh`` (``python -m mmmask.utils.collect_env``)."""
import importlib
import platform
import sys
from typing import Dict


def _version(name: str) -> str:
    try:
        return getattr(importlib.import_module(name), '__version__', 'unknown')
    except Exception as e:  # report, never crash: this is a diagnostic
        return f'not importable ({type(e).__name__}: {e})'


def collect_env() -> Dict[str, str]:
    """Versions of the stack, whether mmcv's compiled ops load, and the compute device."""
    env = {'Python': sys.version.split()[0], 'Platform': platform.platform()}
    for mod in ('torch', 'torchvision', 'numpy', 'mmengine', 'mmcv', 'mmdet', 'mmseg',
                'mmpretrain', 'sklearn', 'mmmask'):
        env[mod] = _version(mod)
    try:
        importlib.import_module('mmcv._ext')
        env['mmcv._ext (compiled ops)'] = 'loaded'
    except Exception as e:
        env['mmcv._ext (compiled ops)'] = f'MISSING ({e}); run tools/install.sh'
    try:
        import torch
        if torch.cuda.is_available():
            env['Device'] = f'CUDA {torch.version.cuda}: {torch.cuda.get_device_name(0)}' \
                            f' x{torch.cuda.device_count()}'
        else:
            env['Device'] = f'CPU ({torch.get_num_threads()} threads); CUDA not available'
    except Exception as e:
        env['Device'] = f'unknown ({e})'
    return env


def main() -> None:
    env = collect_env()
    width = max(map(len, env))
    print('mmmask environment')
    for k, v in env.items():
        print(f'  {k:<{width}} : {v}')


if __name__ == '__main__':
    main()
