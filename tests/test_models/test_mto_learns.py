"""MTO (on SimMIM) learns on the toy digits (CPU): the linear probe on the pretrained ViT beats
the same probe on the random init; the recalibrated masked→masked attention mass (L_spa) falls."""
import os.path as osp
import re

import pytest

from conftest import ONE_THREAD, REPO, TRAIN_NO_WORKERS, final_metric, run_tool

TOY = osp.join(REPO, 'configs', 'mto', 'mto_vit-tiny-p8_1xb64-30e_toy-pretrain.py')


def logged(stdout: str, name: str):
    return [float(v) for v in re.findall(rf'\b{name}: (-?[0-9.]+)', stdout)]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_mto_toy_pretraining_learns(workdir):
    """The toy config as shipped (30 epochs, 960 iterations, ~8 min idle on 2 cores; 20 min on
    a loaded machine). Our run (seed 0): linear probe 23.0 -> 24.6 (k-NN 25.0 -> 15.6; plain
    SimMIM at the same budget 23.0 -> 27.8, see configs/mto/README.md); the weighted L_spa falls
    from 0.052 (iteration 10) to ~0.003."""
    proc = run_tool(['train.py', TOY, '--work-dir', osp.join(workdir, 'mto'), '--cfg-options',
                     'randomness.seed=0'] + TRAIN_NO_WORKERS,
                    cwd=workdir, env=ONE_THREAD, timeout=1800)
    out = proc.stdout + proc.stderr
    init, after = final_metric(out, 'linear_init_top1'), final_metric(out, 'linear_top1')
    assert after - init >= 0.8, f'linear probe {init} -> {after}'
    spa = logged(out, 'loss_spa')
    assert len(spa) > 20, out[-2000:]
    assert sum(spa[-5:]) / 5 < 0.5 * spa[0], f'L_spa {spa[0]} -> {spa[-5:]}'
