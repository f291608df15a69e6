# A small PPMA classifier (official head) trained from scratch on the built-in 32x32 digit crops.
_base_ = ['../_base_/datasets/toy_cls.py', '../_base_/cls_runtime.py']
toy_arch = dict(
    embed_dims=[32, 64, 128, 128],
    depths=[1, 1, 2, 1],
    num_heads=[2, 2, 4, 4],
    mlp_ratios=[2, 2, 2, 2],
    modes=['chunk', 'whole', 'whole', 'whole'],
    layer_scales=[None, None, None, None])
model = dict(
    type='ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.PPMA', arch=toy_arch, out_indices=(3, ), out_norm=False,
                  drop_path_rate=0.0),
    neck=None,
    head=dict(type='mmmask.PPMAClsHead', num_classes=10, in_channels=128, projection=256,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1)
]
train_cfg = dict(by_epoch=True, max_epochs=30, val_interval=5)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False))
