"""Issue evidence for OPTIN: on a tiny (hybrid) ViT trained on the toy digits, OPTIN meets its MAC
budget and keeps more accuracy than random unit selection at the same budget (no retraining).

The toy ViT is the ViT paper's hybrid: 4 mmpretrain ViT blocks on the 4x4 layer3 map of the
session's toy ResNet-18 (``toy_resnet18``); plain patch ViTs stay at chance on the toy digits
within a CPU budget."""
import os.path as osp

import pytest
import torch

from conftest import NO_WORKERS, ONE_THREAD, REPO, run_tool, shared_artifact

CONFIG = osp.join(REPO, 'configs', 'optin', 'optin_r18-c32-vit4_1xb32-4e_toy-cls-64x64.py')
BUDGETS = (0.5, 0.6)  # kept fractions of the prunable (head + FFN neuron) MACs

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures('mmpretrain_scope')]


def toy_vit_checkpoint(tmp_path_factory, toy_resnet18: str) -> str:
    """The toy hybrid ViT of configs/optin (4 epochs on the frozen toy ResNet-18, seed 0),
    trained once per session."""

    def train(work: str) -> str:
        run_tool(['train.py', CONFIG, '--work-dir', osp.join(work, 'vit'), '--cfg-options',
                  'randomness.seed=0', f'model.backbone.init_cfg.checkpoint={toy_resnet18}']
                 + NO_WORKERS, cwd=work, env=ONE_THREAD, timeout=1800)
        return osp.join(work, 'vit', 'epoch_4.pth')

    return shared_artifact(tmp_path_factory, 'optin_toy_vit', train)


def _loader(cfg, key, work, batch_size=None):
    import copy

    from mmengine.runner import Runner
    c = copy.deepcopy(cfg[key])
    c.update(num_workers=0, persistent_workers=False)
    if batch_size:
        c['batch_size'] = batch_size
    c['dataset']['data_root'] = osp.join(work, 'data', 'toy', 'cls')
    return Runner.build_dataloader(c, seed=0)


def test_optin_beats_random_at_same_budget(tmp_path_factory, toy_resnet18, monkeypatch):
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import MODELS

    import mmmask.models  # noqa: F401
    from mmmask.models.pruning.optin import (OptinMasker, greedy_select, optin_prune_model,
                                             random_select)
    ckpt = toy_vit_checkpoint(tmp_path_factory, toy_resnet18)
    work = osp.dirname(osp.dirname(ckpt))
    monkeypatch.chdir(work)  # the toy data lives under ./data/toy of the training directory
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    load_checkpoint(model, ckpt, map_location='cpu')
    model.eval()
    torch.manual_seed(0)
    val = [model.data_preprocessor(b, False) for b in _loader(cfg, 'val_dataloader', work)]
    labels = torch.cat([torch.stack([s.gt_label[0] for s in b['data_samples']]) for b in val])

    def accuracy(head_keep=None, neuron_keep=None) -> float:
        masker = OptinMasker(blocks)
        if head_keep is not None:
            masker.set(head_keep, neuron_keep)
        with torch.no_grad(), masker:
            pred = torch.cat([model(b['inputs'], mode='tensor').argmax(1) for b in val])
        return float((pred == labels).float().mean())

    settings = dict(cfg.optin)
    batch = next(iter(_loader(cfg, 'train_dataloader', work, settings.pop('calib_batch_size'))))
    calib = model.data_preprocessor(batch, False)
    group = settings.pop('neuron_group')
    for key in ('flops_budget', 'calib_batches'):
        settings.pop(key)
    res = optin_prune_model(model, calib['inputs'], BUDGETS[0], neuron_group=group, **settings)
    blocks = res['blocks']
    full = accuracy()
    assert full > 0.6  # the toy ViT learned the digits
    for budget in BUDGETS:
        head_keep, neuron_keep, info = greedy_select(blocks, res['scores'], budget, group)
        optin = accuracy(head_keep, neuron_keep)
        rand = []
        for seed in range(5):
            hk, nk, rinfo = random_select(blocks, budget, seed=seed, neuron_group=group)
            assert rinfo['ratio'] <= budget
            rand.append(accuracy(hk, nk))
        mean_rand = sum(rand) / len(rand)
        print(f'\nOPTIN toy ViT: full {full:.3f}, OPTIN@{info["ratio"]:.3f} MACs {optin:.3f}, '
              f'random {[round(r, 3) for r in rand]} (mean {mean_rand:.3f}); heads kept '
              f'{[int(h.sum()) for h in head_keep]}, neurons '
              f'{[int(n.sum()) for n in neuron_keep]}')
        assert budget - 0.05 < info['ratio'] <= budget  # budget met (and used)
        assert optin > mean_rand + 0.03
        assert optin > full - 0.05  # one-shot, no retraining: accuracy kept
