# ViT-P point classifier on the built-in toy scenes (10 digits + sky + ground), CPU-sized
# (_base_/models/vitp_vit-t4_toy.py: hybrid ViT, 4 layers, 96 wide, 8x8 tokens of the scenes
# upsampled to 128x128). The paper's recipe where it carries over: one point per sampled segment,
# uniformly inside it; RandomResizedCrop (nearest) and rotation (±30° here, ±60° published); no
# flips (a mirrored digit is not a digit); cross-entropy over all points.
# Where it cannot: the paper fine-tunes DINOv2 with SGD and LayerScale 1e-5 for 19k iterations;
# this ViT starts from scratch (its stem from the toy ResNet), so — measured, see README.md —
# LayerScale starts at 1 (at 1e-5 the blocks stay shut), the free positional embedding starts
# from 2-D sin-cos (DINOv2's smooth one is what lets a point token find its patch), and AdamW
# with warm-up replaces SGD; 96 points per image give more supervision per step.
# Train the toy ResNet first (configs/quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py).
_base_ = [
    '../_base_/seg_runtime.py', '../_base_/datasets/toy_seg.py',
    '../_base_/schedules/vitp_sgd_cosine_60e.py', '../_base_/models/vitp_vit-t4_toy.py'
]
num_points = 96
model = {{_base_.vitp_classifier}}
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='mmmask.SegRandomResizedCrop', size=(128, 128), scale=(0.5, 1.0)),
    dict(type='mmmask.SegRandomRotate', degree=30),
    dict(type='mmmask.SampleSegmentPoints', num_points=num_points),
    dict(type='mmmask.PackPointInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='mmmask.SampleSegmentPoints', num_points=num_points),
    dict(type='Resize', scale=(128, 128), keep_ratio=False),
    dict(type='mmmask.PackPointInputs'),
]
train_dataloader = dict(batch_size=16, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='mmmask.PointAccuracy')
test_evaluator = val_evaluator
max_iters = 1000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'encoder.point_embed': dict(lr_mult=1e-2 / 9e-3)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', T_max=max_iters - 100, eta_min=0.0, by_epoch=False,
         begin=100, end=max_iters)
]
train_cfg = dict(max_iters=max_iters, val_interval=500)
default_hooks = dict(checkpoint=dict(interval=500, max_keep_ckpts=1))
