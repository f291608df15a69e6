# PixPro on the built-in digits (32 px): two crops with their boxes in the source image (no flip:
# a mirrored digit is another glyph), a CIFAR ResNet-18 (stem/base 16) cut after stage 3
# (`num_stages=3`: a 64-d 8x8 map instead of a 128-d 4x4 C5, so that each view has 64 pixels
# to propagate and match, ~2.5 positives each at pos_ratio 0.7; see README), a 2-D MLP
# projector 64 -> 256 -> 64, PPM (gamma 2, one 1x1 value conv), key branch = cosine-momentum EMA
# (0.99 -> 1 over the run) with its own BN statistics. AdamW + 1-epoch warmup + cosine, batch 32,
# 6 epochs (372 iterations, the CPU learning test; 12 epochs: the extended one).
#   python tools/train.py configs/pixpro/pixpro_resnet18-c16_1xb32-4e_toy-pretrain.py
_base_ = [
    '../_base_/datasets/toy_contrastive.py', '../_base_/schedules/toy_pretrain_30e.py',
    '../_base_/pretrain_runtime.py'
]
# the shared toy views (colour jittered fully: see toy_contrastive.py) with the crop boxes kept
view_pipeline = [
    dict(type='mmmask.RandomResizedCropWithCoord', scale=32, crop_ratio_range=(0.5, 1.0),
         backend='pillow'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4, hue=0.5),
    dict(type='RandomGrayscale', prob=0.5, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmmask.MultiViewWithKeys', num_views=2, transforms=[view_pipeline],
         keys=['coord']),
    dict(type='PackInputs', algorithm_keys=['coord']),
]
train_dataloader = dict(batch_size=32, dataset=dict(pipeline=train_pipeline))
model = dict(
    type='mmmask.PixPro',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=16, base_channels=16,
                  num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1), out_indices=(2, ),
                  norm_cfg=dict(type='BN')),
    neck=dict(type='mmmask.MLP2dNeck', in_channels=64, hid_channels=256, out_channels=64),
    head=dict(type='mmmask.PixProHead', in_channels=64, gamma=2.0, clamp_value=0.0,
              transform_layers=1, pos_ratio=0.7),
    momentum=0.99)
optim_wrapper = dict(optimizer=dict(lr=3e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=5, eta_min=1e-5, by_epoch=True, begin=1, end=6,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=6)
