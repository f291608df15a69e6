"""CvT learns: the toy classification config, shortened, clearly beats the 10 % chance level."""
import os.path as osp

import pytest

from conftest import NO_WORKERS, ONE_THREAD, REPO, final_metric, run_tool

TOY = osp.join(REPO, 'configs', 'cvt', 'cvt-toy_1xb32-30e_toy-cls.py')


@pytest.mark.slow
def test_toy_classification_learns(workdir):
    """10 of the config's 30 epochs (630 iterations, ~50 s on one core) on 10 digit classes.
    Our run (seed 0): 15 / 26 / 44 / 49 % top-1 after 3 / 6 / 9 / 12 epochs of a 12-epoch
    schedule; chance is 10 %."""
    proc = run_tool(['train.py', TOY, '--work-dir', osp.join(workdir, 'cvt'), '--cfg-options',
                     'train_cfg.max_epochs=10', 'train_cfg.val_interval=10',
                     'default_hooks.checkpoint.interval=10', 'randomness.seed=0'] + NO_WORKERS,
                    cwd=workdir, env=ONE_THREAD, timeout=900)
    top1 = final_metric(proc.stdout, 'accuracy/top1')
    print(f'CvT toy top-1 after 10 epochs: {top1}')
    assert top1 > 30.0, f'top-1 after 10 epochs: {top1}'
