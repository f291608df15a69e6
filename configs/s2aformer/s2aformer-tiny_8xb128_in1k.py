# S2AFormer-Tiny (ASSUMED preset, see README) on ImageNet-1k, 224x224, 300 epochs, 8 GPUs x 128.
# ASSUMED recipe: the paper's training details could not be read here (no official code); this
# is the DeiT/PVT recipe the efficient hierarchical ViTs it compares with use (AdamW lr 1e-3 at
# batch 1024, wd 0.05, cosine, 5 warm-up epochs, RandAugment m9, random erasing 0.25,
# Mixup 0.8 / CutMix 1.0, label smoothing 0.1, weight EMA).
_base_ = [
    '../_base_/datasets/imagenet_bs128_ppma_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_300e.py', '../_base_/cls_runtime.py'
]
model = dict(
    type='ImageClassifier',
    backbone=dict(type='mmmask.S2AFormer', arch='tiny', out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=384,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=.02)],
        cal_acc=False),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))
