"""mmmask.MCLStageHook in a real (tiny) mmengine run: stage switch at the boundary epoch,
single-cluster batches afterwards with num_workers 0 and 2, frozen stage encoders, saved labels,
resume from a mid-run checkpoint, and the configuration errors."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner
from mmpretrain.structures import DataSample
from torch.utils.data import Dataset

from mmmask.datasets.samplers.cluster_sampler import ClusterBatchSampler

N = 48


class _TwoGroups(Dataset):
    """48 16x16 images: even indices dark, odd indices bright (k-means K=2 separates them);
    ``views=2`` gives SimCLR's two noisy views, ``views=1`` the clean image."""

    def __init__(self, views: int = 2):
        self.views = views
        g = torch.Generator().manual_seed(0)
        base = torch.where(torch.arange(N) % 2 == 0, 40.0, 210.0)
        self.imgs = (base[:, None, None, None] + 10 * torch.randn(N, 3, 16, 16, generator=g))
        self.metainfo = dict(classes=['dark', 'bright'])

    def __len__(self):
        return N

    def __getitem__(self, i):
        img = self.imgs[i].clamp(0, 255)
        sample = DataSample()
        sample.set_metainfo(dict(sample_idx=i))
        if self.views == 1:
            return dict(inputs=img.to(torch.uint8), data_samples=sample)
        views = [(img + 8 * torch.randn_like(img)).clamp(0, 255).to(torch.uint8)
                 for _ in range(2)]
        return dict(inputs=views, data_samples=sample)


MODEL = dict(
    type='mmmask.MCL',
    algorithm=dict(
        type='SimCLR',
        data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=[127.5] * 3,
                               std=[64.0] * 3),
        backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=4, base_channels=4),
        neck=dict(type='NonLinearNeck', in_channels=32, hid_channels=16, out_channels=8,
                  num_layers=2, with_avg_pool=True),
        head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
                  temperature=0.1)))


def _cfg(work_dir, stage_epochs=(1, 1), workers=0, **hook):
    loader = dict(dataset=_TwoGroups(), batch_size=4, num_workers=workers,
                  persistent_workers=workers > 0,
                  sampler=dict(type='DefaultSampler', shuffle=True),
                  batch_sampler=dict(type='mmmask.ClusterBatchSampler'),
                  collate_fn=dict(type='default_collate'))
    bank = dict(dataset=_TwoGroups(views=1), batch_size=16, num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=False),
                collate_fn=dict(type='default_collate'))
    hook_cfg = dict(type='mmmask.MCLStageHook', stage_epochs=list(stage_epochs),
                    num_clusters=2, cluster_dataloader=bank)
    hook_cfg.update(hook)
    return dict(
        model=copy.deepcopy(MODEL), work_dir=work_dir, train_dataloader=loader,
        train_cfg=dict(by_epoch=True, max_epochs=sum(stage_epochs)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        custom_hooks=[hook_cfg], default_scope='mmpretrain', randomness=dict(seed=0),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=dict(type='CheckpointHook', interval=1)),
        env_cfg=dict(dist_cfg=dict(backend='gloo')), log_level='WARNING')


def _hook(runner):
    return next(h for h in runner.hooks if type(h).__name__ == 'MCLStageHook')


@pytest.mark.parametrize('workers', [0, 2])
def test_stage_switch_single_cluster_batches(tmp_path, workers):
    runner = Runner(**_cfg(str(tmp_path), workers=workers))
    seen = []
    orig = runner.model.train_step

    def spy(data, optim_wrapper):
        seen.append((runner.epoch, [s.sample_idx for s in data['data_samples']]))
        return orig(data, optim_wrapper)
    runner.model.train_step = spy
    runner.train()
    hook, model = _hook(runner), runner.model
    assert hook.stage == 1 and model.num_finished == 1
    labels = hook.pseudo_labels
    # k-means on the stage-0 embeddings finds the two brightness groups
    parity = torch.arange(N) % 2
    assert len({(int(a), int(b)) for a, b in zip(parity, labels)}) == 2
    sampler = runner.train_dataloader.batch_sampler
    assert isinstance(sampler, ClusterBatchSampler) and sampler.cluster_mode
    stage0 = [ids for e, ids in seen if e == 0]
    stage1 = [ids for e, ids in seen if e == 1]
    assert len(stage0) == 12 and any(len(set(labels[ids].tolist())) > 1 for ids in stage0)
    assert stage1 and all(len(set(labels[ids].tolist())) == 1 for ids in stage1)
    assert len(stage1) == len(sampler)
    assert runner.message_hub.get_info('mcl/single_cluster_batches') == 1.0
    assert runner.train_loop.max_iters == 12 + len(sampler)  # recounted at the switch
    for name in ('cluster_labels', 'pseudo_labels', 'centroids'):
        assert osp.isfile(osp.join(str(tmp_path), f'mcl_stage0_{name}.pt'))
    assert all(not p.requires_grad for p in model.stage_backbones.parameters())


def test_resume_restores_stage_state(tmp_path):
    work = str(tmp_path / 'run')
    runner = Runner(**_cfg(work, stage_epochs=(1, 1, 1)))
    runner.train()
    hook = _hook(runner)
    assert hook.stage == 2 and runner.model.num_finished == 2
    ckpt = torch.load(osp.join(work, 'epoch_2.pth'), weights_only=False)
    assert len(ckpt['mcl']['cluster_labels']) == 2 and int(ckpt['state_dict']['stage']) == 2
    cfg = _cfg(str(tmp_path / 'resumed'), stage_epochs=(1, 1, 1))
    cfg.update(resume=True, load_from=osp.join(work, 'epoch_2.pth'))
    resumed = Runner(**cfg)
    resumed.train()  # runs the last epoch (stage 2) only
    h2 = _hook(resumed)
    assert resumed.epoch == 3 and resumed.model.num_finished == 2 and h2.stage == 2
    for a, b in zip(h2.cluster_labels, ckpt['mcl']['cluster_labels']):
        assert torch.equal(a, b)
    assert torch.equal(resumed.train_dataloader.batch_sampler.pseudo_labels,
                       ckpt['mcl']['pseudo_labels'])
    assert resumed.message_hub.get_info('mcl/single_cluster_batches') == 1.0
    # the frozen stage encoders came from the checkpoint
    for k, v in resumed.model.stage_backbones.state_dict().items():
        assert torch.equal(v, ckpt['state_dict'][f'stage_backbones.{k}'])


def test_configuration_errors(tmp_path):
    cfg = _cfg(str(tmp_path / 'b'))
    cfg['train_cfg'] = dict(by_epoch=True, max_epochs=3)
    with pytest.raises(ValueError, match='make them equal'):
        Runner(**cfg).train()
    cfg = _cfg(str(tmp_path / 'c'))
    cfg['train_dataloader'].pop('batch_sampler')
    with pytest.raises(TypeError, match='mmmask.ClusterBatchSampler'):
        Runner(**cfg).train()
    cfg = _cfg(str(tmp_path / 'd'))
    cfg['model'] = copy.deepcopy(MODEL['algorithm'])
    with pytest.raises(TypeError, match="type='mmmask.MCL'"):
        Runner(**cfg).train()
    from mmmask.registry import HOOKS
    with pytest.raises(ValueError, match='positive ints'):
        HOOKS.build(dict(type='mmmask.MCLStageHook', stage_epochs=[0, 2], cluster_dataloader={}))
    with pytest.raises(ValueError, match="'official' or 'paper'"):
        HOOKS.build(dict(type='mmmask.MCLStageHook', stage_epochs=[1], cluster_dataloader={},
                         integration='x'))
