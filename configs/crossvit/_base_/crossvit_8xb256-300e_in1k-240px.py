# CrossViT on ImageNet-1k, the official recipe (IBM/CrossViT main.py defaults + README command,
# a DeiT/timm recipe): 300 epochs, 8 GPUs x 256, AdamW lr 5e-4 x 2048/512 = 2e-3, wd 0.05 (not on
# biases and norms), 5 warm-up epochs from 1e-6, cosine to 1e-5, AMP, drop path 0.1;
# input 240 px (RandomResizedCrop bicubic, flip, RandAugment rand-m9-mstd0.5-inc1, random erasing
# 0.25 "pixel", repeated augmentation x3, Mixup 0.8 / CutMix 1.0 switched with p 0.5, label
# smoothing 0.1); test: resize the short side to int(256/224 x 240) = 274 (bicubic), centre crop
# 240. The backbone resizes the 240-px input to each branch (240 for S, 224 for L).
_base_ = ['../../_base_/cls_runtime.py']

# ---- model (variants override backbone.arch and head.in_channels) ----
model = dict(
    type='ImageClassifier',
    backbone=dict(type='mmmask.CrossViT', arch='tiny', img_size=(240, 224),
                  patch_size=(12, 16), drop_path_rate=0.1),
    neck=None,
    head=dict(type='mmmask.MultiBranchLinearClsHead', num_classes=1000, in_channels=[96, 192],
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original',
                        loss_weight=1.0)),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))

# ---- data ----
dataset_type = 'ImageNet'
data_preprocessor = dict(
    num_classes=1000, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
bgr_mean = data_preprocessor['mean'][::-1]
bgr_std = data_preprocessor['std'][::-1]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=240, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[round(x) for x in bgr_mean], interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02,
         max_area_ratio=1 / 3, fill_color=bgr_mean, fill_std=bgr_std),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=274, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=240),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=256,
    num_workers=10,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root='data/imagenet', split='train',
                 pipeline=train_pipeline),
    sampler=dict(type='RepeatAugSampler', num_repeats=3, shuffle=True))
val_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root='data/imagenet', split='val',
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# ---- schedule ----
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=5e-4 * 2048 / 512, weight_decay=0.05, eps=1e-8,
                   betas=(0.9, 0.999)),
    # timm create_optimizer: no decay on 1-d parameters (biases, LayerNorm); the CLS tokens and
    # position embeddings *are* decayed (their official names miss timm's skip list).
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / 2e-3, by_epoch=True, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5, end=300)
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=2048)
