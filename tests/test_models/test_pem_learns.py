"""PEM learns on the built-in toy data (CPU): semantic (mmseg) and panoptic (mmdet) toy configs."""
import os.path as osp

import pytest

from conftest import NO_WORKERS, ONE_THREAD, REPO, final_metric, run_tool

CFG = osp.join(REPO, 'configs', 'pem')
PAN_ITERS = 600



@pytest.mark.slow
@pytest.mark.extended  # ~12 min; PEM's learning in the default run: the panoptic test below
def test_toy_semantic_learns(workdir, toy_resnet18):
    """The toy recipe as documented: the toy "ImageNet" backbone (10 epochs of digit crops,
    ~2 min), then 1,000 of the PEM config's 2,000 iterations. Separating sky from ground alone
    scores ~16.7 mIoU on these scenes and a constant prediction ~4; from scratch PEM never passed
    19 in 2,000 iterations, so passing 22 needs digits named. Our runs: 26.6 at 1,000 iterations
    with this seed (backbone 76.6 % top-1), 32.7 in an unseeded run (backbone 83.4 %)."""
    proc = run_tool(['train.py', osp.join(CFG, 'pem_r18-toy_1xb8-2k_toy-seg-128x128.py'),
                     '--work-dir', osp.join(workdir, 'sem'), '--cfg-options',
                     f'model.backbone.init_cfg.checkpoint={toy_resnet18}',
                     'train_cfg.max_iters=1000', 'train_cfg.val_interval=1000',
                     'default_hooks.checkpoint.interval=1000', 'randomness.seed=0']
                    + NO_WORKERS, cwd=workdir, env=ONE_THREAD, timeout=3000)
    miou = final_metric(proc.stdout, 'mIoU')
    assert miou > 22.0, f'mIoU after 1,000 iterations: {miou}'


@pytest.mark.slow
def test_toy_panoptic_learns(workdir):
    """mmdet's Mask2Former detector with the PEM head, PAN_ITERS iterations of the toy panoptic
    config on 40 validation images. An untrained model scores ~0 PQ. In our run the config reached PQ 16.1 after
    500 iterations (stuff PQ 96.9; things 0: naming digits takes a mask-classification head longer
    than this budget, see configs/pem/README.md) and 16.3 after 2,000."""
    proc = run_tool(['train.py', osp.join(CFG, 'pem_r18-toy_1xb8-2k_toy-panoptic-64x64.py'),
                     '--work-dir', osp.join(workdir, 'pan'), '--cfg-options',
                     f'train_cfg.max_iters={PAN_ITERS}', f'train_cfg.val_interval={PAN_ITERS}',
                     f'param_scheduler.1.end={PAN_ITERS}',
                     f'default_hooks.checkpoint.interval={PAN_ITERS}', 'randomness.seed=0',
                     'val_dataloader.dataset.indices=40'] + NO_WORKERS,
                    cwd=workdir, env=ONE_THREAD, timeout=3000)
    pq = final_metric(proc.stdout, 'coco_panoptic/PQ')
    pq_st = final_metric(proc.stdout, 'coco_panoptic/PQ_st')
    assert pq_st > 80.0 and pq > 12.0, f'PQ {pq}, stuff PQ {pq_st}'
