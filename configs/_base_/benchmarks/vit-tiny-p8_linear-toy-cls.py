# Linear probe of a toy-pretrained ViT (128-d x 4 blocks, patch 8, 32 px) on the built-in digits:
# frozen backbone, all patch tokens of the last block concatenated (the probe KNNEvalHook reports
# as `linear_top1`, here as a trainable mmpretrain classifier). Method configs set
# `model.backbone.init_cfg.checkpoint` to their toy pretraining checkpoint.
_base_ = ['../datasets/toy_cls.py', '../cls_runtime.py']
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmmask.MaskedViT',
        arch=dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512),
        img_size=32,
        patch_size=8,
        out_type='featmap',
        frozen_stages=4,
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(type='mmmask.FlattenNeck'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=128 * 16,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
train_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-2, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=10, by_epoch=True, eta_min=1e-4)]
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=5)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10))
