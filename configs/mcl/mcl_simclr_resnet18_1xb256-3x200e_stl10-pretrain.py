# MCL over SimCLR, the paper's unimodal setting (ResNet-18 on STL-10; paper §5.1): 3 stages,
# K = 10 k-means clusters per stage (official default), single-cluster batches from stage 1 on,
# each stage starting from a fresh initialisation, cross-stage concatenation for evaluation.
# Per-stage epochs (200), batch 256, the LARS recipe and the 96-px SimCLR augmentation are
# ASSUMPTIONS (mmpretrain's SimCLR recipe scaled to 96 px / batch 256), see README.md.
# Data: STL-10 as image files; pretraining reads train (5k) + unlabeled (100k) from one folder,
# data/stl10/train+unlabeled/*.png (convert the binary release once, e.g. torchvision's STL10
# with split='train+unlabeled' + PIL save).
#   bash tools/dist_train.sh configs/mcl/mcl_simclr_resnet18_1xb256-3x200e_stl10-pretrain.py 1
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmmask'], allow_failed_imports=False)

stage_epochs = [200, 200, 200]
data_root = 'data/stl10/'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor', mean=[112.4, 109.1, 98.4], std=[68.4, 66.6, 68.5],
    to_rgb=True)
view_pipeline = [
    dict(type='RandomResizedCrop', scale=96, backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.8, contrast=0.8, saturation=0.8,
                          hue=0.2)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=0.5),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
plain_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_set = dict(type='CustomDataset', data_root=data_root, data_prefix='train+unlabeled',
                 with_label=False, pipeline=train_pipeline)
train_dataloader = dict(
    batch_size=256,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='mmmask.ClusterBatchSampler', drop_last=True),
    collate_fn=dict(type='default_collate'),
    dataset=train_set)
# the train set again, un-augmented and in order: the stage-end embedding for k-means
cluster_dataloader = dict(
    batch_size=512,
    num_workers=8,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train+unlabeled',
                 with_label=False, pipeline=plain_pipeline))

model = dict(
    type='mmmask.MCL',
    algorithm=dict(
        type='SimCLR',
        data_preprocessor=data_preprocessor,
        backbone=dict(type='ResNet', depth=18, norm_cfg=dict(type='SyncBN'),
                      zero_init_residual=True),
        neck=dict(type='NonLinearNeck', in_channels=512, hid_channels=2048, out_channels=128,
                  num_layers=2, with_avg_pool=True),
        head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'), temperature=0.1)),
    cluster_feature='neck')

custom_hooks = [
    dict(type='mmmask.MCLStageHook', stage_epochs=stage_epochs, num_clusters=10,
         integration='official', reinit=True, reset_optimizer=True,
         kmeans_cfg=dict(max_iter=100, tol=1e-5, batch_size=None),
         cluster_dataloader=cluster_dataloader),
]

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='LARS', lr=0.3, momentum=0.9, weight_decay=1e-6),
    paramwise_cfg=dict(custom_keys={
        'bn': dict(decay_mult=0, lars_exclude=True),
        'bias': dict(decay_mult=0, lars_exclude=True),
        'downsample.1': dict(decay_mult=0, lars_exclude=True)}))
# 10 warm-up epochs in stage 0, then one cosine period per stage (by epoch: later stages have
# fewer iterations per epoch after the per-cluster truncation)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineRestartLR', periods=[stage_epochs[0] - 10] + stage_epochs[1:],
         restart_weights=[1.0] * len(stage_epochs), eta_min=0.0, by_epoch=True, begin=10,
         end=sum(stage_epochs)),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=sum(stage_epochs))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=50, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=256)
