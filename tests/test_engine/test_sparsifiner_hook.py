"""SparsifinerPhaseHook: phase 1 (reconstruction) -> phase 2 (sparse) at the configured epoch or
iteration, with the loss weights and trainable parameters of each phase — by calling the hook
methods and in a tiny mmengine Runner."""
import logging
from types import SimpleNamespace

import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner
from mmpretrain.structures import DataSample

from mmmask.engine.hooks.sparsifiner_hook import SparsifinerClassifier, SparsifinerPhaseHook
from mmmask.registry import HOOKS
from mmmask.utils import register_all_modules

register_all_modules()


def tiny_classifier(**kwargs) -> SparsifinerClassifier:
    return SparsifinerClassifier(
        backbone=dict(type='mmmask.Sparsifiner', arch=dict(
            embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64), img_size=32,
            patch_size=8, reduce_n_factor=2, coef_topk=4),
        head=dict(type='mmpretrain.LinearClsHead', num_classes=4, in_channels=32,
                  loss=dict(type='mmpretrain.CrossEntropyLoss')),
        **kwargs)


def fake_runner(model, epoch=0, iteration=0):
    return SimpleNamespace(model=model, epoch=epoch, iter=iteration,
                           logger=logging.getLogger('test_sparsifiner_hook'))


def trainable(model):
    predictor = {p.requires_grad for n, p in model.named_parameters() if '.bias_provider.' in n}
    rest = {p.requires_grad for n, p in model.named_parameters() if '.bias_provider.' not in n}
    return predictor, rest


def test_hook_by_epoch_sets_phase_weights_and_freezing():
    model = tiny_classifier()
    hook = HOOKS.build(dict(type='mmmask.SparsifinerPhaseHook', switch_epoch=2,
                            phase2_weights=dict(cls=0.5)))
    runner = fake_runner(model)
    hook.before_train(runner)
    assert model.phase == 1 and model.backbone.phase == 1
    assert model.loss_weights == dict(cls=0.0, cls_distill=0.0, token_distill=0.0, recon=1.0)
    assert trainable(model) == ({True}, {False})  # official: only the predictors train
    runner.epoch = 1
    hook.before_train_epoch(runner)
    assert model.phase == 1
    runner.epoch = 2
    hook.before_train_epoch(runner)
    assert model.phase == 2 and model.loss_weights['cls'] == 0.5
    assert model.loss_weights['recon'] == 0.0
    assert trainable(model) == ({False}, {True})  # detached masks: predictors frozen
    # resuming in phase 2 lands in phase 2 at once
    hook2 = SparsifinerPhaseHook(switch_epoch=2)
    model2 = tiny_classifier()
    model2.set_phase(1)
    hook2.before_train(fake_runner(model2, epoch=3, iteration=30))
    assert model2.phase == 2


def test_hook_by_iteration_and_bad_args():
    model = tiny_classifier(freeze_backbone_in_recon=False)
    hook = SparsifinerPhaseHook(switch_iter=5, phase1_weights=dict(cls=1.0))
    runner = fake_runner(model)
    for it, phase in ((0, 1), (4, 1), (5, 2), (9, 2)):
        runner.iter = it
        hook.before_train_iter(runner, it)
        assert model.phase == phase
    runner.iter = 0
    hook.before_train_iter(runner, 0)
    assert model.loss_weights['cls'] == 1.0 and trainable(model) == ({True}, {True})
    with pytest.raises(ValueError, match='exactly one'):
        SparsifinerPhaseHook()
    with pytest.raises(ValueError, match='exactly one'):
        SparsifinerPhaseHook(switch_epoch=1, switch_iter=1)
    with pytest.raises(TypeError, match='SparsifinerClassifier'):
        SparsifinerPhaseHook(switch_epoch=1).before_train(fake_runner(torch.nn.Linear(2, 2)))


def test_hook_in_a_tiny_runner(tmp_path):
    """2 epochs x 2 iterations, switch after epoch 1: phase-1 steps change only the predictors,
    phase-2 steps only the rest."""
    torch.manual_seed(0)
    data = [dict(inputs=torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8),
                 data_samples=DataSample().set_gt_label(i % 4)) for i in range(8)]
    loader = torch.utils.data.DataLoader(data, batch_size=4, collate_fn=pseudo_collate)
    model = tiny_classifier()
    snapshots = {}

    from mmengine.hooks import Hook

    class SnapshotHook(Hook):
        priority = 'LOWEST'

        def before_train(self, runner):  # after the runner's init_weights
            snapshots['before'] = {k: v.clone() for k, v in model.state_dict().items()}

        def after_train_epoch(self, runner):
            snapshots[runner.epoch] = {k: v.clone() for k, v in model.state_dict().items()}

    runner = Runner(model=model, work_dir=str(tmp_path), train_dataloader=loader,
                    train_cfg=dict(by_epoch=True, max_epochs=2),
                    optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-2)),
                    custom_hooks=[dict(type='mmmask.SparsifinerPhaseHook', switch_epoch=1),
                                  SnapshotHook()],
                    default_hooks=dict(checkpoint=None, logger=None),
                    default_scope='mmpretrain')
    runner.train()

    def changed(a, b):
        return {k for k in a if not torch.equal(a[k], b[k])}
    # runner.epoch is 0-based in after_train_epoch
    phase1 = changed(snapshots['before'], snapshots[0])
    phase2 = changed(snapshots[0], snapshots[1])
    assert phase1 and all('.bias_provider.' in k for k in phase1)
    assert phase2 and not any('.bias_provider.' in k for k in phase2)
    assert model.phase == 2
