# Linear evaluation on STL-10 (train 5k / test 8k, 10 classes) of the 3-stage MCL ResNet-18 from
# mcl_simclr_resnet18_1xb256-3x200e_stl10-pretrain.py: all stages frozen, their C5 features
# concatenated (3 x 512), global average pooling, linear classifier (mmpretrain's classifier and
# runtime). Schedule (SGD lr 0.1, batch 256, 100 epochs) is an assumption.
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmmask'], allow_failed_imports=False)
data_root = 'data/stl10/'
mcl_checkpoint = 'work_dirs/mcl_simclr_resnet18_1xb256-3x200e_stl10-pretrain/epoch_600.pth'
data_preprocessor = dict(num_classes=10, mean=[112.4, 109.1, 98.4], std=[68.4, 66.6, 68.5],
                         to_rgb=True)
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmmask.MCLStagesBackbone',
        backbone=dict(type='ResNet', depth=18),
        num_stages=3,
        frozen=True,
        mcl_checkpoint=mcl_checkpoint),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=3 * 512,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=96, backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=256, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='test',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.0))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=100, by_epoch=True, begin=0, end=100)]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=10)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
