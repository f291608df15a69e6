# Linear probe on the built-in digits of the toy Hallucinator + MoCo v2 ResNet-18 (stem/base 16),
# pretrained by hallucinator-mocov2_resnet18-c16_1xb64-6e_toy-pretrain.py: frozen backbone (BN in
# eval mode), global average pooling, linear classifier 128 -> 10.
_base_ = ['../_base_/datasets/toy_cls.py', '../_base_/cls_runtime.py']
checkpoint = 'work_dirs/hallucinator-mocov2_resnet18-c16_1xb64-6e_toy-pretrain/epoch_6.pth'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=16, base_channels=16,
                  out_indices=(3, ), frozen_stages=4, norm_eval=True, norm_cfg=dict(type='BN'),
                  init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=128,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-2, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=10, by_epoch=True, eta_min=1e-4)]
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=5)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10))
