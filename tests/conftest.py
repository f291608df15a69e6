import fcntl
import os
import re
import os.path as osp
import subprocess
import sys
from typing import Callable, List, Optional

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
QUICKSTART = osp.join(REPO, 'configs', 'quickstart', 'fcn_r18-c32-d8_1xb8-2k_toy-seg-64x64.py')
#: cfg-options that make a toy segmentation run short, single-process and deterministic.
FAST_SEG = [
    'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
    'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
    'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
    'train_dataloader.batch_size=4', 'randomness.seed=0', 'randomness.deterministic=True',
    'default_hooks.logger.interval=1', 'val_dataloader.dataset.indices=20',
    'test_dataloader.dataset.indices=20',
]


def run_tool(args: List[str], cwd: str, env: Optional[dict] = None, timeout: int = 900,
             check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python tools/<args>`` (or a shell script when args[0] ends with .sh) from ``cwd``."""
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', **(env or {}))
    if args[0].endswith('.sh'):
        cmd = ['bash', osp.join(REPO, 'tools', args[0])] + args[1:]
        full_env.setdefault('PYTHON', sys.executable)
    else:
        cmd = [sys.executable, osp.join(REPO, 'tools', args[0])] + args[1:]
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{" ".join(cmd)} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}')
    return proc



def final_metric(stdout: str, name: str) -> float:
    """The value of ``name`` on the ``Final validation metrics:`` line that tools/train.py prints."""
    match = re.search(rf'Final validation metrics: .*\b{re.escape(name)}=([0-9.]+)', stdout)
    assert match, stdout[-3000:]
    return float(match.group(1))


def printed_test_metric(stdout: str, name: str) -> float:
    """The value of ``name`` on the ``Test metrics:`` line that tools/test.py prints."""
    match = re.search(rf'Test metrics: .*\b{re.escape(name)}=([0-9.]+)', stdout)
    assert match, stdout[-3000:]
    return float(match.group(1))


@pytest.fixture
def mmpretrain_scope():
    """Run a test with ``mmpretrain`` as the default scope. mmpretrain's ``ImageClassifier``
    builds its default ``ClsDataPreprocessor`` by bare name in the *current* scope, so a
    ``type='mmpretrain.ImageClassifier'`` built while another scope (mmmask, mmseg, mmdet: whatever
    an earlier test in the same worker left) is current would not find it."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


@pytest.fixture
def workdir(tmp_path):
    """A fresh working directory (toy data appears under its data/toy/ as links to the cache)."""
    return str(tmp_path)


#: one thread per training process: on 2 shared cores, two 2-thread processes thrash
ONE_THREAD = dict(OMP_NUM_THREADS='1')
#: cfg-options that keep a training run in one process (no dataloader workers)
NO_WORKERS = ['train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
              'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False']
#: the train-loader part of NO_WORKERS, for configs without a val loop (self-supervised pretraining)
TRAIN_NO_WORKERS = [o for o in NO_WORKERS if o.startswith('train_dataloader.')]


def shared_artifact(tmp_path_factory, name: str, build: Callable[[str], str]) -> str:
    """``build(directory) -> str`` run once per test session, also across pytest-xdist workers
    (the first worker builds under a file lock, the others wait and reuse its result)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        root = root.parent  # shared by the workers of this session
    work, done = root / f'shared-{name}', root / f'shared-{name}.done'
    with open(root / f'shared-{name}.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            work.mkdir(exist_ok=True)
            done.write_text(build(str(work)))
        return done.read_text()


@pytest.fixture(scope='session')
def toy_resnet18(tmp_path_factory) -> str:
    """The toy "ImageNet" ResNet-18-c32 (configs/quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py,
    seed 0, ~2 min), trained once per session for the slow tests whose models start from it.
    Returns its checkpoint path."""

    def train(work: str) -> str:
        run_tool(['train.py', osp.join(REPO, 'configs', 'quickstart',
                                       'resnet18-c32_1xb32-10e_toy-cls-64x64.py'),
                  '--work-dir', osp.join(work, 'pre'), '--cfg-options', 'randomness.seed=0']
                 + NO_WORKERS, cwd=work, env=ONE_THREAD, timeout=1800)
        return osp.join(work, 'pre', 'epoch_10.pth')

    return shared_artifact(tmp_path_factory, 'toy_resnet18', train)
