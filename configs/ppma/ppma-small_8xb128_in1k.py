# PPMA-Small on ImageNet-1k, 224x224, 300 epochs on 8 GPUs x 128 (the official recipe).
_base_ = [
    '../_base_/datasets/imagenet_bs128_ppma_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_300e.py', '../_base_/cls_runtime.py'
]
model = dict(
    type='ImageClassifier',
    backbone=dict(type='mmmask.PPMA', arch='small', out_indices=(3, ), out_norm=False),
    neck=None,
    head=dict(
        type='mmmask.PPMAClsHead',
        num_classes=1000,
        in_channels=512,
        projection=1024,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))
