# "ImageNet pre-training" for the toy world: the ResNet-18 with 32 base channels used by the toy
# dense configs, trained to classify the built-in digit crops upsampled to 64x64 (the digit size
# the 128x128 toy dense configs see), with the ImageNet mean/std the dense configs use.
# Mask-classification models (PEM) start from it as the papers start from ImageNet weights; from
# scratch, their sparse per-segment class loss takes far longer than a CPU budget to name digits.
#   python tools/train.py configs/quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py
# writes work_dirs/resnet18-c32_1xb32-10e_toy-cls-64x64/epoch_10.pth (~83% top-1, ~2 min on CPU).
_base_ = ['../_base_/datasets/toy_cls.py', '../_base_/cls_runtime.py',
           '../_base_/schedules/toy_cls_30e.py']
data_preprocessor = dict(
    num_classes=10, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
model = dict(
    type='ImageClassifier',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='ResNet', depth=18, stem_channels=32, base_channels=32,
                  out_indices=(3, ), style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=256,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.6, 1.0)),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64)),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=10)
