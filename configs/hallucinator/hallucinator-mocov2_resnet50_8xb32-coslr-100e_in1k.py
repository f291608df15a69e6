# Hallucinator + MoCo v2, ImageNet-1k (official configs/IN1K/mocov2_center_hallucinate.py):
# ResNet-50, MoCo v2 projection 2048 -> 2048 -> 128, K = 65536, m = 0.999, T = 0.2, generator
# 256 -> 256 -> 256 -> 128, SGD lr 0.03 / momentum 0.9 / wd 1e-4, 100 epochs, per-epoch cosine to 0.
# Batch: the official config says 259, split as int(259 / GPUs) per GPU; only 8 GPUs x 32 = 256
# makes the 2 x batch enqueued keys divide K = 65536 (the official assertion), so 8 x 32 here.
# Augmentation: mmpretrain's MoCo v2 views (= official `imagenet_pretrain_rcrop`, used for the first
# 20 epochs); the later ContrastiveCrop boxes (Peng et al., CVPR 2022) are not part of this method.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32_mocov2.py', '../_base_/pretrain_runtime.py'
]
model = dict(
    type='mmmask.HallucinatorMoCo',
    queue_len=65536,
    feat_dim=128,
    momentum=0.001,
    backbone=dict(type='ResNet', depth=50, norm_cfg=dict(type='BN'), zero_init_residual=False),
    neck=dict(type='MoCoV2Neck', in_channels=2048, hid_channels=2048, out_channels=128,
              with_avg_pool=True),
    head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'), temperature=0.2),
    hallucinator=dict(type='mmmask.HallucinatorGenerator', feat_dim=128, hidden_dim=256,
                      max_ratio=0.1))
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=100, eta_min=0., by_epoch=True, begin=0, end=100)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=256)
