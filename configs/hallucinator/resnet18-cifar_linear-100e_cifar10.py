# Linear evaluation on CIFAR-10 of a Hallucinator-pretrained ResNet-18 (CIFAR stem), as the
# official DDP_linear.py with configs/linear/cifar10_res18.py: frozen backbone (whole encoder in
# eval mode), global average pooling, linear classifier 512 -> 10; SGD lr 10 / momentum 0.9 / wd 0,
# batch 512, 100 epochs, lr x 0.1 at epochs 60 and 80; RandomResizedCrop 32 + flip for training.
# Checkpoint: a pretraining checkpoint of this folder, or an official one converted with
#   python tools/model_converters/hallucinator2mmmask.py last.pth ckpt.pth --backbone-only
_base_ = ['mmpretrain::_base_/datasets/cifar10_bs16.py', '../_base_/cls_runtime.py']
checkpoint = 'work_dirs/hallucinator-mocov2_resnet18-cifar_1xb512-coslr-500e_cifar10/epoch_500.pth'
data_preprocessor = dict(
    num_classes=10, mean=[125.307, 122.961, 113.8575], std=[51.5865, 50.847, 51.255],
    to_rgb=False)
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet_CIFAR', depth=18, out_indices=(3, ), frozen_stages=4,
                  norm_eval=True, norm_cfg=dict(type='BN'),
                  init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=512,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
train_pipeline = [
    dict(type='RandomResizedCrop', scale=32, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=512, num_workers=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=512)
test_dataloader = val_dataloader
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='SGD', lr=10.0, momentum=0.9, weight_decay=0.))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[60, 80], gamma=0.1)]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=10)
val_cfg = dict()
test_cfg = dict()
