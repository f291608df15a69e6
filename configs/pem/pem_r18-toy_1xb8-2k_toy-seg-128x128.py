# PEM on the built-in toy scenes (10 digits + sky + ground) on CPU: a 32-channel ResNet-18, a
# 32-channel PEM pixel decoder and 4 PEM decoder layers with 16 queries.
# As in the paper the backbone starts from classification weights — here the toy "ImageNet"
# (train it first, ~2 min):
#   python tools/train.py configs/quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py
# and the 64x64 scenes are upsampled to 128x128: at 64x64 the stride-32 level is 2x2 and most
# queries' masks hide all of it, which leaves PEM-CA nothing to select (see README).
_base_ = [
    '../_base_/seg_runtime.py', '../_base_/datasets/toy_seg.py',
    '../_base_/schedules/toy_2k.py', '../_base_/models/pem_r50.py'
]
num_classes = 12
crop_size = (128, 128)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size, size_divisor=None),
    backbone=dict(
        type='ResNet', depth=18, stem_channels=32, base_channels=32, norm_cfg=norm_cfg,
        norm_eval=False,
        init_cfg=dict(
            type='Pretrained', prefix='backbone.',
            checkpoint='work_dirs/resnet18-c32_1xb32-10e_toy-cls-64x64/epoch_10.pth')),
    decode_head=dict(
        in_channels=[32, 64, 128, 256],
        num_classes=num_classes,
        feat_channels=64,
        out_channels=64,
        num_queries=16,
        pixel_decoder=dict(feat_channels=32, norm_cfg=norm_cfg),
        transformer_decoder=dict(num_layers=4, num_heads=4, feedforward_channels=128,
                                 norm_cfg=norm_cfg),
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1]),
        train_cfg=dict(num_points=256)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.9),
    dict(type='PhotoMetricDistortion'),  # no flips: a mirrored digit is not a digit
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
# the paper's optimiser shape: AdamW, backbone lr x0.1, clipping at 0.01
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
