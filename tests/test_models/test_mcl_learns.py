"""MCL learns: the 2-stage toy run (SimCLR, tiny ResNet) beats the random-init backbone on the
k-NN probe, every stage-1 batch is single-cluster, and the cross-stage (concatenated) features are
compared with stage 0 alone (CPU)."""
import os.path as osp
import re

import pytest
import torch

from conftest import ONE_THREAD, REPO, TRAIN_NO_WORKERS, final_metric, run_tool

TOY = osp.join(REPO, 'configs', 'mcl', 'mcl_simclr_resnet18-c16_1xb64-16e_toy-pretrain.py')


def _stage_knn(cfg_path: str, ckpt: str, workdir: str) -> dict:
    """k-NN top-1 of stage 0 alone and of the concatenated stages (the final representation)."""
    import os
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from mmmask.evaluation.knn import knn_accuracy, pool_features
    from mmmask.registry import MODELS

    cfg = Config.fromfile(cfg_path)
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    model.load_state_dict(torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict'])
    model.eval()
    cwd = os.getcwd()
    os.chdir(workdir)  # the toy data lives under ./data/toy
    try:
        out = {}
        feats = {}
        for split, loader_cfg in (('bank', cfg.knn_bank), ('query', cfg.knn_query)):
            loader = Runner.build_dataloader(loader_cfg)
            per = {'stage0': [], 'all': []}
            labels = []
            with torch.no_grad():
                for batch in loader:
                    data = model.data_preprocessor(batch, False)
                    per['stage0'].append(pool_features(model.extract_feat(data['inputs'],
                                                                          stages=[0])))
                    per['all'].append(pool_features(model.extract_feat(data['inputs'])))
                    labels.append(torch.cat([s.gt_label for s in data['data_samples']]))
            feats[split] = ({k: torch.cat(v) for k, v in per.items()}, torch.cat(labels))
        for key in ('stage0', 'all'):
            out[key] = knn_accuracy(feats['bank'][0][key], feats['bank'][1],
                                    feats['query'][0][key], feats['query'][1], 10, 20, 0.07)
    finally:
        os.chdir(cwd)
    return out


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_toy_mcl_learns(workdir):
    """The config as is: stages of 10 + 6 epochs over the shared toy views (stage 0: 31 plain
    batches/epoch, stage 1: single-cluster batches, fresh encoder). Our runs (1 thread, beside
    other trainings, ~3 min): seed 0 k-NN 11.2 -> 14.0, linear 12.2 -> 13.4, k-NN of stage 0 alone
    12.4 vs the 2-stage concatenation 14.0; seed 1 k-NN 9.4 -> 13.6, stage 0 13.2 vs 13.6.
    Gates: the k-NN probe beats random init by >= 2 points (measured +2.8 / +4.2), and MCL's own
    mechanism (stage switch, single-cluster stage-1 batches, features of both stages). The linear
    probe and the concatenation-vs-stage-0 comparison are printed (+1.6 / +0.4: too small over two
    seeds to gate)."""
    work = osp.join(workdir, 'mcl')
    proc = run_tool(['train.py', TOY, '--work-dir', work, '--cfg-options', 'randomness.seed=0']
                    + TRAIN_NO_WORKERS, cwd=workdir, env=ONE_THREAD, timeout=1800)
    init, after = final_metric(proc.stdout, 'knn_init_top1'), final_metric(proc.stdout,
                                                                           'knn_top1')
    lin_init, lin = (final_metric(proc.stdout, 'linear_init_top1'),
                     final_metric(proc.stdout, 'linear_top1'))
    log = proc.stdout + proc.stderr
    stage1 = re.findall(r'MCL stage 1 epoch \d+: (\d+)/(\d+) batches single-cluster', log)
    stage0 = re.findall(r'MCL stage 0 epoch \d+: (\d+)/(\d+) batches single-cluster', log)
    knn = _stage_knn(TOY, osp.join(work, 'epoch_16.pth'), workdir)
    print(f'k-NN {init} -> {after}, linear {lin_init} -> {lin}; stage-1 batches {stage1}; '
          f'k-NN stage 0 alone {knn["stage0"]:.2f}, stages 0+1 concatenated {knn["all"]:.2f}')
    assert after - init >= 2.0, f'k-NN {init} -> {after}: MCL did not beat random init'
    assert lin > 0  # the linear probe ran (printed above, not gated)
    # method signal 1: the hook switched the sampler, and every stage-1 batch was single-cluster
    assert re.search(r'MCL stage 0 done: k-means K=10', log), log[-3000:]
    assert len(stage1) == 6, stage1
    assert all(int(a) == int(b) > 0 for a, b in stage1), stage1
    assert not stage0  # no pseudo labels yet in stage 0 (nothing to count)
    # reported, not gated: whether the concatenation beats stage 0 alone (seeds 0 / 1: 14.0 vs
    # 12.4, 13.6 vs 13.2)
    assert 0 < knn['all'] <= 100 and 0 < knn['stage0'] <= 100, knn
