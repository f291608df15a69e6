"""The command-line tools, end to end, as a user runs them (subprocesses from a fresh directory)."""
import glob
import json
import os
import os.path as osp

import pytest
import torch

from conftest import FAST_SEG, QUICKSTART, REPO, run_tool


def _weights(path):
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


def _train(workdir, name, iters, extra=(), **kw):
    return run_tool(['train.py', QUICKSTART, '--work-dir', osp.join(workdir, name),
                     '--cfg-options', f'train_cfg.max_iters={iters}',
                     f'train_cfg.val_interval={iters}', f'default_hooks.checkpoint.interval={iters}',
                     *FAST_SEG, *extra], cwd=workdir, **kw)


@pytest.mark.slow
def test_train_then_test(workdir):
    proc = _train(workdir, 'run', 20)
    assert 'Final validation metrics:' in proc.stdout and 'mIoU=' in proc.stdout
    ckpt = osp.join(workdir, 'run', 'iter_20.pth')
    assert osp.isfile(ckpt)
    assert osp.islink(osp.join(workdir, 'data', 'toy', 'seg'))  # toy data generated/linked
    out = osp.join(workdir, 'preds.pkl')
    show = osp.join(workdir, 'show')
    proc = run_tool(['test.py', QUICKSTART, ckpt, '--work-dir', osp.join(workdir, 'test'),
                     '--out', out, '--show-dir', show, '--cfg-options', *FAST_SEG], cwd=workdir)
    assert 'Test metrics:' in proc.stdout and 'mIoU=' in proc.stdout
    assert osp.getsize(out) > 0
    assert len(glob.glob(osp.join(show, '**', '*.png'), recursive=True)) == 20  # painted predictions


@pytest.mark.slow
def test_kill_and_resume_gives_identical_weights(workdir):
    """2N iterations straight == N, stop, --resume, N more (deterministic pipeline, no workers)."""
    cfg = osp.join(workdir, 'no_aug.py')
    with open(cfg, 'w') as f:
        f.write(f"_base_ = '{QUICKSTART}'\n"
                "train_dataloader = dict(dataset=dict(pipeline=[dict(type='LoadImageFromFile'), "
                "dict(type='LoadAnnotations'), dict(type='PackSegInputs')]))\n")
    n = 6

    def train(name, iters, *extra):
        return run_tool(['train.py', cfg, '--work-dir', osp.join(workdir, name), *extra,
                         '--cfg-options', f'train_cfg.max_iters={iters}',
                         f'train_cfg.val_interval={2 * n}', f'default_hooks.checkpoint.interval={n}',
                         *FAST_SEG], cwd=workdir)

    train('straight', 2 * n)
    train('resumed', n)  # stops after N iterations with a checkpoint
    assert not osp.exists(osp.join(workdir, 'resumed', f'iter_{2 * n}.pth'))
    proc = train('resumed', 2 * n, '--resume')
    assert f'resumed epoch: 0, iter: {n}' in proc.stdout + proc.stderr
    a = _weights(osp.join(workdir, 'straight', f'iter_{2 * n}.pth'))
    b = _weights(osp.join(workdir, 'resumed', f'iter_{2 * n}.pth'))
    c = _weights(osp.join(workdir, 'resumed', f'iter_{n}.pth'))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert any(not torch.equal(a[k], c[k]) for k in a)  # the resumed run did train N more


@pytest.mark.slow
def test_dist_train_two_gloo_processes(workdir):
    proc = run_tool(['dist_train.sh', QUICKSTART, '2', '--work-dir', osp.join(workdir, 'ddp'),
                     '--cfg-options', 'train_cfg.max_iters=6', 'train_cfg.val_interval=6',
                     'default_hooks.checkpoint.interval=6', *FAST_SEG],
                    cwd=workdir, env=dict(PORT='29541', OMP_NUM_THREADS='1'))
    log = proc.stdout + proc.stderr
    assert 'Distributed launcher: pytorch' in log and 'GPU number: 2' in log
    assert 'Final validation metrics:' in proc.stdout
    assert osp.isfile(osp.join(workdir, 'ddp', 'iter_6.pth'))


@pytest.mark.slow
def test_amp_on_cpu(workdir):
    if torch.cuda.is_available():
        pytest.skip('checks the CPU bf16 path')
    proc = run_tool(['train.py', QUICKSTART, '--amp', '--work-dir', osp.join(workdir, 'amp'),
                     '--cfg-options', 'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
                     'default_hooks.checkpoint.interval=4', *FAST_SEG], cwd=workdir)
    dumped = open(glob.glob(osp.join(workdir, 'amp', '*', 'vis_data', 'config.py'))[0]).read()
    assert "type='AmpOptimWrapper'" in dumped
    assert 'Final validation metrics:' in proc.stdout
    ckpt = torch.load(osp.join(workdir, 'amp', 'iter_4.pth'), map_location='cpu',
                      weights_only=False)
    assert 'loss_scaler' not in ckpt['optimizer']  # bf16 autocast, no GradScaler


def test_get_flops(workdir):
    proc = run_tool(['analysis_tools/get_flops.py', QUICKSTART, '--shape', '64', '64'],
                    cwd=workdir)
    assert 'Flops:' in proc.stdout and 'Params:' in proc.stdout


def test_benchmark(workdir):
    out = osp.join(workdir, 'bench.json')
    run_tool(['analysis_tools/benchmark.py', QUICKSTART, '--shape', '64', '64', '--iters', '3',
              '--warmup', '1', '--batch-size', '2', '--out', out], cwd=workdir)
    res = json.load(open(out))
    assert res['images_per_s'] > 0 and res['latency_ms_median'] > 0 and res['peak_rss_mb'] > 0


def test_browse_dataset(workdir):
    out = osp.join(workdir, 'browse')
    run_tool(['analysis_tools/browse_dataset.py', QUICKSTART, '--output-dir', out, '--num', '3'],
             cwd=workdir)
    pngs = sorted(glob.glob(osp.join(out, '*.png')))
    assert len(pngs) == 3
    import cv2
    assert cv2.imread(pngs[0]).shape[2] == 3


def test_print_config(workdir):
    proc = run_tool(['misc/print_config.py', QUICKSTART, '--cfg-options', 'train_cfg.max_iters=7'],
                    cwd=workdir)
    assert 'max_iters=7' in proc.stdout and "type='mmmask.ToyData'" in proc.stdout


def test_make_toy_data(workdir):
    proc = run_tool(['misc/make_toy_data.py', 'seq', '--out', osp.join(workdir, 'toy')],
                    cwd=workdir)
    assert osp.isfile(osp.join(workdir, 'toy', 'seq', 'train.json')), proc.stdout


# ----------------------------------------------------------------------------- bad input
def test_missing_data_root_says_how_to_prepare(workdir):
    cfg = osp.join(workdir, 'real.py')
    with open(cfg, 'w') as f:
        f.write(f"_base_ = '{QUICKSTART}'\n"
                "train_dataloader = dict(dataset=dict(_delete_=True, type='mmseg.ADE20KDataset',"
                " data_root='data/ade/ADEChallengeData2016', pipeline=[]))\n")
    proc = run_tool(['train.py', cfg], cwd=workdir, check=False)
    assert proc.returncode == 2
    assert 'data/ade/ADEChallengeData2016' in proc.stderr and 'README' in proc.stderr
    assert 'make_toy_data' in proc.stderr


def test_missing_pretrained_checkpoint_says_how_to_convert(workdir):
    cfg = osp.join(REPO, 'configs', 'ppma', 'upernet_ppma-toy_1xb8-2k_toy-seg-64x64.py')
    proc = run_tool(['train.py', cfg, '--cfg-options',
                     "model.backbone.init_cfg.type=Pretrained",
                     'model.backbone.init_cfg.checkpoint=checkpoints/ppma-tiny_in1k.pth'],
                    cwd=workdir, check=False)
    assert proc.returncode == 2
    assert 'checkpoints/ppma-tiny_in1k.pth' in proc.stderr and 'model_converters' in proc.stderr


def test_unknown_type_suggests_prefix(workdir):
    cfg = osp.join(workdir, 'typo.py')
    with open(cfg, 'w') as f:
        f.write(f"_base_ = '{QUICKSTART}'\n"
                "custom_imports = dict(imports=['mmmask'])\n"
                "train_dataloader = dict(dataset=dict(type='ToyData'))\n")
    proc = run_tool(['train.py', cfg, '--work-dir', osp.join(workdir, 'typo')], cwd=workdir,
                    check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "type='mmmask.ToyData'" in proc.stderr


def test_cuda_requested_on_cpu_machine(workdir):
    if torch.cuda.is_available():
        pytest.skip('needs a machine without CUDA')
    proc = run_tool(['train.py', QUICKSTART, '--device', 'cuda'], cwd=workdir, check=False)
    assert proc.returncode == 2 and '--device cpu' in proc.stderr


def test_mmcv_without_ops_points_to_installer(workdir, tmp_path):
    """Simulate mmcv-lite: a `mmcv._ext` that fails to import."""
    fake = tmp_path / 'fake'
    fake.mkdir()
    sitecustom = fake / 'sitecustomize.py'
    sitecustom.write_text(
        'import sys, importlib.abc\n'
        'class Block(importlib.abc.MetaPathFinder):\n'
        '    def find_spec(self, name, path, target=None):\n'
        "        if name == 'mmcv._ext':\n"
        "            raise ImportError('No module named mmcv._ext')\n"
        'sys.meta_path.insert(0, Block())\n')
    env = dict(PYTHONPATH=f'{fake}{os.pathsep}{REPO}')
    proc = run_tool(['train.py', QUICKSTART], cwd=workdir, env=env, check=False)
    assert proc.returncode == 2 and 'tools/install.sh' in proc.stderr, proc.stderr[-2000:]
