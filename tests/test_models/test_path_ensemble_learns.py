"""Path-ensemble ViT learns: the toy config (EnsembleScale + long→short self-distillation),
shortened, beats chance (10 %) clearly (CPU)."""
import os.path as osp

import pytest

from conftest import NO_WORKERS, ONE_THREAD, REPO, final_metric, run_tool

TOY_CLS = osp.join(REPO, 'configs', 'path_ensemble', 'path-ensemble-toy_1xb32-30e_toy-cls.py')
EPOCHS = 10


@pytest.mark.slow
def test_toy_classification_learns(workdir):
    """EPOCHS of the config's 30 epochs (63 iterations each); the distillation term is logged."""
    proc = run_tool(['train.py', TOY_CLS, '--work-dir', osp.join(workdir, 'path_ensemble'),
                     '--cfg-options', f'train_cfg.max_epochs={EPOCHS}',
                     f'train_cfg.val_interval={EPOCHS}', 'randomness.seed=0', *NO_WORKERS],
                    cwd=workdir, env=ONE_THREAD, timeout=1200)
    assert 'loss_path_distill' in proc.stdout
    top1 = final_metric(proc.stdout, 'accuracy/top1')
    assert top1 > 30.0, f'top-1 after {EPOCHS} epochs: {top1}'
