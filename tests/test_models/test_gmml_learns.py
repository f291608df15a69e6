"""GMML learns on the toy digits (CPU): the linear probe on the pretrained ViT beats the same
probe on the random init, and the reconstruction L1 on the corrupted pixels falls well below its
starting value."""
import os.path as osp
import re

import pytest

from conftest import ONE_THREAD, REPO, TRAIN_NO_WORKERS, final_metric, run_tool

TOY = osp.join(REPO, 'configs', 'gmml', 'gmml_vit-tiny-p8_1xb64-30e_toy-pretrain.py')


def logged(stdout: str, name: str):
    return [float(v) for v in re.findall(rf'\b{name}: ([0-9.]+)', stdout)]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_gmml_toy_pretraining_learns(workdir):
    """The toy config as shipped (30 epochs, 960 iterations, ~7 min idle on 2 cores; 17 min on a
    loaded machine). Our run (seed 0): linear probe 24.8 -> 29.0 (k-NN 25.0 -> 17.4); the L1 on
    corrupted pixels falls from 0.69 (first logged, iteration 10) to ~0.40. In a freshly
    installed environment (2026-11-22: Pillow 13, OpenCV 5; cause of the change not isolated) the
    same run gave 24.8 -> 26.6, hence a +1.5 gate: weak evidence alone, the L1 gate below carries
    the method signal."""
    proc = run_tool(['train.py', TOY, '--work-dir', osp.join(workdir, 'gmml'), '--cfg-options',
                     'randomness.seed=0'] + TRAIN_NO_WORKERS,
                    cwd=workdir, env=ONE_THREAD, timeout=1800)
    out = proc.stdout + proc.stderr
    init, after = final_metric(out, 'linear_init_top1'), final_metric(out, 'linear_top1')
    assert after - init >= 1.5, f'linear probe {init} -> {after}'
    loss = logged(out, 'loss')
    assert len(loss) > 20, out[-2000:]
    assert sum(loss[-5:]) / 5 < 0.75 * loss[0], f'L1 {loss[0]} -> {loss[-5:]}'
