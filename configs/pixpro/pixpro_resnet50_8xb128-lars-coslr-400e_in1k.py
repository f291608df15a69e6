# PixPro ResNet-50 pretraining on ImageNet-1k, 400 epochs, as the official
# tools/pixpro_base_r50_400ep.sh (zdaxie/PixPro): 8 GPUs x 128 images (batch 1024), BYOL
# augmentation (asymmetric blur/solarize) with crop coordinates, SyncBN in both branches, LARS
# (base lr 1.0 per 256 images -> 4.0, momentum 0.9, wd 1e-5, trust 0.001; 1-D parameters excluded
# from LARS and weight decay), 5 warmup epochs from lr/100 then cosine to 1e-6 (per iteration),
# PixPro p=2, momentum 0.99 (cosine to 1), pos_ratio 0.7, one-conv value transform, instance
# branch off, AMP (the script's apex O1).
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32_byol.py',
    'mmpretrain::_base_/default_runtime.py',
]
# the official RandomResizedCropCoord is torchvision's (bilinear) + the coordinate record
view_pipeline1 = [
    dict(type='mmmask.RandomResizedCropWithCoord', scale=224, crop_ratio_range=(0.08, 1.0),
         interpolation='bilinear', backend='pillow'),
    dict(type='mmmask.RandomFlipWithCoord', prob=0.5),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.2,
                          hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=1.0),
]
view_pipeline2 = [
    dict(type='mmmask.RandomResizedCropWithCoord', scale=224, crop_ratio_range=(0.08, 1.0),
         interpolation='bilinear', backend='pillow'),
    dict(type='mmmask.RandomFlipWithCoord', prob=0.5),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.2,
                          hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=0.1),
    dict(type='Solarize', thr=128, prob=0.2),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmmask.MultiViewWithKeys', num_views=[1, 1],
         transforms=[view_pipeline1, view_pipeline2], keys=['coord']),
    dict(type='PackInputs', algorithm_keys=['coord']),
]
train_dataloader = dict(batch_size=128, num_workers=8, drop_last=True,
                        dataset=dict(pipeline=train_pipeline))

model = dict(
    type='mmmask.PixPro',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='ResNet', depth=50, out_indices=(3, ), norm_cfg=dict(type='SyncBN'),
                  zero_init_residual=True),
    neck=dict(type='mmmask.MLP2dNeck', in_channels=2048, hid_channels=4096, out_channels=256,
              norm_cfg=dict(type='SyncBN')),
    head=dict(type='mmmask.PixProHead', in_channels=256, gamma=2.0, clamp_value=0.0,
              transform_layers=1, pos_ratio=0.7),
    momentum=0.99)

epochs = 400
warmup_epochs = 5
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='LARS', lr=1.0 * 1024 / 256, momentum=0.9, weight_decay=1e-5,
                   eta=0.001),
    paramwise_cfg=dict(
        custom_keys={
            'bn': dict(decay_mult=0, lars_exclude=True),
            'bias': dict(decay_mult=0, lars_exclude=True),
            'downsample.1': dict(decay_mult=0, lars_exclude=True),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=epochs - warmup_epochs, eta_min=1e-6, by_epoch=True,
         begin=warmup_epochs, end=epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
# the recipe's batch: 8 GPUs x 128
auto_scale_lr = dict(base_batch_size=1024)
