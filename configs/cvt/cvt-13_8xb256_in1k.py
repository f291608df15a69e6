# CvT-13 on ImageNet-1k at 224x224, trained from scratch for 300 epochs: the official recipe of
# leoxiaobin/CvT experiments/imagenet/cvt/cvt-13-224x224.yaml run on 8 GPUs (`run.sh -g 8`).
# - batch 256/GPU x 8 = 2048; AdamW lr 0.00025 x 8 GPUs = 2e-3 (the official code multiplies the
#   yaml lr by the world size, TRAIN.SCALE_LR), weight decay 0.05, none on BatchNorm, LayerNorm,
#   biases and the CLS token (WITHOUT_WD_LIST ['bn', 'bias', 'ln'] + no_weight_decay());
# - timm cosine schedule: 5 warm-up epochs from 1e-6, cosine to 1e-5 (the yaml's 10 cooldown
#   epochs never run: training stops at END_EPOCH 300); AMP on;
# - timm augmentation: bicubic RandomResizedCrop, flip, RandAugment rand-m9-mstd0.5-inc1, random
#   erasing 0.25 (pixel mode), Mixup 0.8 / CutMix 1.0 (one of the two per batch), label smoothing
#   0.1; test: bicubic resize of the short side to 256 (224 / 0.875), centre crop 224.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py', '../_base_/cls_runtime.py'
]
model = dict(
    type='ImageClassifier',
    backbone=dict(type='mmmask.CvT', arch='cvt-13', out_type='cls_token'),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=384,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=.02),
        cal_acc=False),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))
train_dataloader = dict(batch_size=256, num_workers=6, persistent_workers=True)
val_dataloader = dict(batch_size=32, num_workers=6, persistent_workers=True)
test_dataloader = val_dataloader

optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=2.5e-4 * 8, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'.cls_token': dict(decay_mult=0.0)}))
param_scheduler = [
    # timm warm-up: 1e-6 -> lr linearly over 5 epochs (per iteration here, per epoch in timm)
    dict(type='LinearLR', start_factor=1e-6 / 2e-3, by_epoch=True, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5, end=300,
         convert_to_iter_based=True)
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=500),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=2048)
