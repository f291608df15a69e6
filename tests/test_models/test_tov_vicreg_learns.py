"""TOV-VICReg learns on the built-in moving-digit clips (CPU): the temporal-order head ranks the
reference order of *held-out* clips above the shuffled ones. The digit probes (k-NN / linear on the
cls token) do NOT beat random init at this 3-minute budget; they are printed, not gated (see
configs/tov_vicreg/README.md, "Toy results")."""
import os.path as osp

import numpy as np
import pytest
import torch

from conftest import ONE_THREAD, REPO, TRAIN_NO_WORKERS, final_metric, run_tool

TOY = osp.join(REPO, 'configs', 'tov_vicreg', 'tov-vicreg_vit-tiny-p8_1xb64-30e_toy-pretrain.py')


def held_out_order_accuracy(workdir: str, checkpoint=None):
    """(ranking accuracy, balanced accuracy) of the temporal-order head over the 6 orders of every
    (t, t-1, t+1) triple of the val clips, views built by the training pipeline (seeded)."""
    from mmengine.config import Config
    from mmengine.dataset import default_collate
    from mmengine.registry import init_default_scope

    from mmmask.registry import DATASETS, MODELS
    from mmmask.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(TOY)
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if checkpoint is not None:
        model.load_state_dict(torch.load(checkpoint, map_location='cpu',
                                         weights_only=False)['state_dict'])
    model.eval()
    ds_cfg = cfg.train_dataloader.dataset.copy()
    ds_cfg.update(ann_file='val.json', data_root=osp.join(workdir, 'data', 'toy', 'seq'))
    np.random.seed(0)
    dataset = DATASETS.build(ds_cfg)
    batch = default_collate([dataset[i] for i in range(len(dataset))])
    data = model.data_preprocessor(batch, False)
    x, _, prev, nxt = data['inputs']
    logits = model.temporal_order_logits(x, prev, nxt)
    head = model.head
    return float(head.ranking_accuracy(logits)), float(head.balanced_accuracy(logits))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_toy_tov_vicreg_learns(workdir):
    """The toy config as is (30 epochs x 5 iterations of 64 clip triples = 150 iterations).
    Our run (seed 0, OMP_NUM_THREADS=1, 165 s solo on 2 idle cores): held-out order ranking
    accuracy 0.523 (random init) -> 0.625 (chance 0.5; balanced accuracy at logit 0 stays 0.50:
    the BCE optimum under the 1:5 prior never predicts "reference"); digit probes on the cls token
    k-NN 10.2 -> 10.8, linear 12.4 -> 11.4 (chance 10) -- no probe gain at this budget."""
    wd = osp.join(workdir, 'tov')
    proc = run_tool(['train.py', TOY, '--work-dir', wd, '--cfg-options', 'randomness.seed=0']
                    + TRAIN_NO_WORKERS, cwd=workdir, env=ONE_THREAD, timeout=1800)
    knn0, knn = final_metric(proc.stdout, 'knn_init_top1'), final_metric(proc.stdout, 'knn_top1')
    lin0, lin = final_metric(proc.stdout, 'linear_init_top1'), final_metric(proc.stdout,
                                                                           'linear_top1')
    print(f'k-NN {knn0} -> {knn}, linear {lin0} -> {lin}')  # reported, not gated (see docstring)
    rank, bacc = held_out_order_accuracy(workdir, osp.join(wd, 'epoch_30.pth'))
    rank0, _ = held_out_order_accuracy(workdir)
    assert rank >= 0.56 and rank - rank0 >= 0.06, (rank0, rank, bacc)
