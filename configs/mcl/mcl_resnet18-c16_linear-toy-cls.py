# Linear probe on the built-in digits of the toy MCL encoders (2 stages), pretrained by
# mcl_simclr_resnet18-c16_1xb64-16e_toy-pretrain.py: both stages' frozen C5 features concatenated
# (cross-stage representation, 2 x 128 channels), global average pooling, linear classifier.
_base_ = ['../_base_/datasets/toy_cls.py', '../_base_/cls_runtime.py']
mcl_checkpoint = 'work_dirs/mcl_simclr_resnet18-c16_1xb64-16e_toy-pretrain/epoch_16.pth'
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmmask.MCLStagesBackbone',
        backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=16, base_channels=16),
        num_stages=2,
        frozen=True,
        mcl_checkpoint=mcl_checkpoint),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=2 * 128,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
train_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-2, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=10, by_epoch=True, eta_min=1e-4)]
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=5)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10))
