# Hallucinator + MoCo v2, CIFAR-10 (official configs/small/cifar10/moco_center_hallucinate.py):
# ResNet-18 with the CIFAR stem (3x3 conv, no max-pool), MoCo v2 projection 512 -> 512 -> 128,
# K = 65536, m = 0.999, T = 0.2, generator (256 -> 256 -> 256 -> 128, λ ~ U(0, 0.1) per batch),
# SGD lr 0.5 / momentum 0.9 / wd 1e-4, batch 512, 500 epochs, per-epoch cosine to 0.1 x lr.
# Augmentation: the official `cifar_train_rcrop` views (RandomResizedCrop 32 (0.2, 1), flip,
# colour jitter 0.4/0.4/0.4/0.1 p 0.8, grayscale p 0.2) for both views; the official config's first
# view uses ContrastiveCrop's centre-box crop (Peng et al., CVPR 2022), not part of this method.
# 2 x 512 keys are enqueued per step: queue_len must stay a multiple of 2 x total batch.
#   python tools/train.py configs/hallucinator/hallucinator-mocov2_resnet18-cifar_1xb512-coslr-500e_cifar10.py
_base_ = ['../_base_/pretrain_runtime.py']
data_preprocessor = dict(
    type='SelfSupDataPreprocessor', mean=[125.307, 122.961, 113.8575],
    std=[51.5865, 50.847, 51.255], to_rgb=False)
view_pipeline = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.0), backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4,
                          hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
]
train_pipeline = [
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=512,
    num_workers=4,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CIFAR10', data_root='data/cifar10', split='train',
                 pipeline=train_pipeline))
model = dict(
    type='mmmask.HallucinatorMoCo',
    data_preprocessor=data_preprocessor,
    queue_len=65536,
    feat_dim=128,
    momentum=0.001,  # m = 0.999
    backbone=dict(type='ResNet_CIFAR', depth=18, out_indices=(3, ), norm_cfg=dict(type='BN'),
                  zero_init_residual=False),
    neck=dict(type='MoCoV2Neck', in_channels=512, hid_channels=512, out_channels=128,
              with_avg_pool=True),
    head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'), temperature=0.2),
    hallucinator=dict(type='mmmask.HallucinatorGenerator', feat_dim=128, hidden_dim=256,
                      max_ratio=0.1))
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='SGD', lr=0.5, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=500, eta_min=0.05, by_epoch=True, begin=0, end=500)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=500)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=50, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=512)
