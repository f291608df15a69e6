"""CMAE learns: toy pretraining beats the random-init backbone on the frozen-feature linear probe,
and the decoders' co-masked features agree (CPU)."""
import os.path as osp
import re

import pytest

from conftest import ONE_THREAD, REPO, TRAIN_NO_WORKERS, final_metric, run_tool


TOY = osp.join(REPO, 'configs', 'cmae', 'cmae_vit-tiny-p8_1xb64-30e_toy-pretrain.py')


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_toy_cmae_learns(workdir):
    """20 of the config's 30 epochs (640 iterations). Our run (seed 0, 3.7 min; ~12 min on a
    loaded 2-core machine): linear probe 22.6 -> 30.4 (k-NN 23.0 -> 16.2), per-branch norm-pix MSE
    1.00 -> 0.40, co-masked cosine 0.995 (high from the start: the all-pairs term is small)."""
    proc = run_tool(['train.py', TOY, '--work-dir', osp.join(workdir, 'cmae'), '--cfg-options',
                     'randomness.seed=0', 'train_cfg.max_epochs=20'] + TRAIN_NO_WORKERS,
                    cwd=workdir, env=ONE_THREAD, timeout=1800)
    init, after = final_metric(proc.stdout, 'linear_init_top1'), final_metric(proc.stdout,
                                                                                'linear_top1')
    assert after - init >= 4.0, f'linear probe {init} -> {after}'
    # method signals: both branches reconstruct (norm-pix MSE far below the trivial 1.0) and the
    # decoders agree on the co-masked tokens
    log = proc.stdout + proc.stderr
    for key in ('loss_rec1', 'loss_rec2'):
        values = [float(v) for v in re.findall(rf'{key}: ([0-9.]+)', log)]
        assert values and values[-1] < 0.6, (key, values[-5:])
    cos = [float(c) for c in re.findall(r'comask_cos: ([0-9.]+)', log)]
    assert cos and cos[-1] > 0.9, cos[-5:]
