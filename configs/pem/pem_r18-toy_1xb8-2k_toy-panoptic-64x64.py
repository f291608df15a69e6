# PEM panoptic segmentation on the built-in toy scenes (64x64; 10 digit things + sky/ground stuff),
# trained from scratch on CPU: mmdet's Mask2Former detector with a small PEM head (as the toy
# semantic config: 32-channel ResNet-18, 32-channel pixel decoder, 4 decoder layers, 16 queries).
_base_ = [
    '../_base_/det_runtime.py', '../_base_/datasets/toy_coco_panoptic.py',
    '../_base_/schedules/toy_2k.py', '../_base_/models/pem_r50_panoptic.py'
]
num_things_classes, num_stuff_classes = 10, 2
num_classes = num_things_classes + num_stuff_classes
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(depth=18, stem_channels=32, base_channels=32, norm_cfg=norm_cfg,
                  norm_eval=False, init_cfg=None),
    panoptic_head=dict(
        in_channels=[32, 64, 128, 256],
        feat_channels=64,
        out_channels=64,
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        num_queries=16,
        pixel_decoder=dict(feat_channels=32, norm_cfg=norm_cfg),
        transformer_decoder=dict(num_layers=4, num_heads=4, feedforward_channels=128,
                                 norm_cfg=norm_cfg),
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes,
                              num_stuff_classes=num_stuff_classes),
    train_cfg=dict(num_points=256),
    test_cfg=dict(max_per_image=16))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='PhotoMetricDistortion'),  # no flips: a mirrored digit is not a digit
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=8, sampler=dict(type='InfiniteSampler', shuffle=True), batch_sampler=None,
    dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=0.01, norm_type=2))
default_hooks = dict(visualization=dict(type='DetVisualizationHook'))
log_processor = dict(by_epoch=False)
