"""S2AFormer learns: the toy classification config, shortened, beats chance clearly (CPU)."""
import os.path as osp

import pytest

from conftest import NO_WORKERS, ONE_THREAD, REPO, final_metric, run_tool


@pytest.mark.slow
def test_toy_classification_learns(workdir):
    """4 of the config's 30 epochs (252 iterations) on 10 digit classes: chance is 10 %."""
    cfg = osp.join(REPO, 'configs', 's2aformer', 's2aformer-toy_1xb32-30e_toy-cls.py')
    proc = run_tool(['train.py', cfg, '--work-dir', osp.join(workdir, 'cls'), '--cfg-options',
                     'train_cfg.max_epochs=4', 'train_cfg.val_interval=4', 'randomness.seed=0',
                     *NO_WORKERS], cwd=workdir, env=ONE_THREAD, timeout=1800)
    top1 = final_metric(proc.stdout, 'accuracy/top1')
    print(f'S2AFormer toy top-1: {top1}')
    assert top1 > 35.0, f'top-1 after 4 epochs: {top1}'
