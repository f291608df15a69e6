"""ViT-P on the built-in toy data (CPU): the point classifier learns, and fusing it with a
deliberately weak stage-1 model (PEM after 300 of its 2,000 toy iterations) raises the mIoU."""
import os.path as osp

import pytest

from conftest import NO_WORKERS, ONE_THREAD, REPO, final_metric, printed_test_metric, run_tool

CFG = osp.join(REPO, 'configs', 'vitp')
STAGE1_ITERS = 300
TEST = ['test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False']


@pytest.mark.slow
@pytest.mark.extended  # 7-14 min (PEM stage 1 + ViT-P + two fusion tests): left out of the
# default run to keep CI inside its time limit; `bash tools/run_tests.sh -m extended` runs it
def test_fusion_improves_weak_stage1(workdir, toy_resnet18):
    """Stage 1: the toy PEM config stopped at 300 iterations (sky/ground right, digits mostly
    not: 18.8 mIoU in our seeded run). Stage 2: the toy ViT-P classifier, 1,000 iterations
    (34.6 % mean point accuracy over the 12 classes in our run; chance 8.3 %). Through the same
    fusion model, alpha=0 reproduces stage 1 and alpha=0.4 (the paper's) gave 23.7 mIoU.
    The CI run of this test: stage 1 18.76, classifier 36.2 % (100 scenes), fused 22.38."""
    stem = f'model.encoder.stem.init_cfg.checkpoint={toy_resnet18}'
    run_tool(['train.py', osp.join(REPO, 'configs', 'pem', 'pem_r18-toy_1xb8-2k_toy-seg-128x128.py'),
              '--work-dir', osp.join(workdir, 'stage1'), '--cfg-options',
              f'model.backbone.init_cfg.checkpoint={toy_resnet18}',
              f'train_cfg.max_iters={STAGE1_ITERS}', 'train_cfg.val_interval=100000',
              f'default_hooks.checkpoint.interval={STAGE1_ITERS}', 'randomness.seed=0']
             + NO_WORKERS, cwd=workdir, env=ONE_THREAD, timeout=3000)
    proc = run_tool(['train.py', osp.join(CFG, 'vitp_vit-t4-hybrid_1xb16-1k_toy-points-128x128.py'),
                     '--work-dir', osp.join(workdir, 'points'), '--cfg-options', stem,
                     'randomness.seed=0', 'val_dataloader.dataset.indices=100'] + NO_WORKERS,
                    cwd=workdir, env=ONE_THREAD, timeout=3000)
    macc = final_metric(proc.stdout, 'point/mAcc')
    assert macc > 20.0, f'mean point accuracy {macc} (chance 8.3, sky/ground only ~16.7)'

    results = {}
    for alpha in (0.0, 0.4):
        proc = run_tool(['test.py', osp.join(CFG, 'vitp_pem-r18-toy_toy-seg-128x128.py'),
                         '--work-dir', osp.join(workdir, f'fusion{alpha}'), '--cfg-options',
                         f'model.segmentor_checkpoint={workdir}/stage1/iter_{STAGE1_ITERS}.pth',
                         f'model.classifier_checkpoint={workdir}/points/iter_1000.pth',
                         f'model.alpha={alpha}'] + TEST,
                        cwd=workdir, env=ONE_THREAD, timeout=1800)
        results[alpha] = printed_test_metric(proc.stdout, 'mIoU')
    assert results[0.4] > results[0.0] + 2.0, results
