"""PPMA learns: the toy segmentation config, shortened, beats the chance level clearly (CPU)."""
import os.path as osp

import pytest

from conftest import REPO, final_metric, run_tool

TOY_SEG = osp.join(REPO, 'configs', 'ppma', 'upernet_ppma-toy_1xb8-2k_toy-seg-64x64.py')



@pytest.mark.slow
@pytest.mark.extended  # ~7 min (= tools/quickstart.sh); default run: the classification test
def test_toy_segmentation_learns(workdir):
    """The toy config as shipped (2,000 iterations, ~5 min on 2 cores). A model that only separates
    sky from ground scores ~15 mIoU on these scenes; PPMA must also find and name the digits
    (which it starts doing after ~1,000 iterations: 17 → 22 → 44 → 60 mIoU per 500 in our run)."""
    proc = run_tool(['train.py', TOY_SEG, '--work-dir', osp.join(workdir, 'ppma'), '--cfg-options',
                     'train_cfg.val_interval=2000', 'default_hooks.checkpoint.interval=2000',
                     'randomness.seed=0', 'train_dataloader.num_workers=1',
                     'val_dataloader.num_workers=1'], cwd=workdir, timeout=2400)
    miou = final_metric(proc.stdout, 'mIoU')
    assert miou > 40.0, f'mIoU after 2,000 iterations: {miou}'


@pytest.mark.slow
def test_toy_classification_learns(workdir):
    """5 of the config's 30 epochs (315 iterations) on 10 digit classes: chance is 10 %."""
    cfg = osp.join(REPO, 'configs', 'ppma', 'ppma-toy_1xb32-30e_toy-cls.py')
    proc = run_tool(['train.py', cfg, '--work-dir', osp.join(workdir, 'cls'), '--cfg-options',
                     'train_cfg.max_epochs=5', 'randomness.seed=0',
                     'train_dataloader.num_workers=1', 'val_dataloader.num_workers=1'],
                    cwd=workdir, timeout=1800)
    top1 = final_metric(proc.stdout, 'accuracy/top1')
    assert top1 > 40.0, f'top-1 after 5 epochs: {top1}'
