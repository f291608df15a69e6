# Brain-Score 2022 "dual-stream" CrossViT (github.com/williamberrios/BrainScore-Transformers,
# Fast-Adversarial-Training/Configs/crossvit-18-dagger-408-FAT-ROTINV/configs_fast_2px.yml):
# ImageNet-pretrained CrossViT-18† at 408/384 px (timm crossvit_18_dagger_408, converted with
# tools/model_converters/crossvit2mmmask.py) fine-tuned for 6 epochs with
# - rotation invariance: RandomApply(rot 90, .5) then RandomApply(rot 180, .5) on the resized
#   image (torchvision RandomRotation, expand=False: `keep_size=True`);
# - FGSM adversarial training with a random start ("fast AT"): eps 2/255, step 2.5/255, training
#   on the adversarial batch only (adv_ratio 1.0);
# Adam lr 8e-5 -> 2e-4 (epoch 1) -> 1e-4 -> 5e-5 -> ... (linear within each epoch, halving),
# L2 weight decay 1e-4 (torch Adam), batch 64, AMP; 224-px crops (the backbone upsamples them to
# its 408/384-px branches, as the official run did); plain cross-entropy.
# Variants: rotation only `--cfg-options model.adv_ratio=0`; FGSM only: drop RandomRot90.
_base_ = ['../_base_/cls_runtime.py']

data_preprocessor = dict(
    num_classes=1000, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
model = dict(
    type='mmmask.AdversarialImageClassifier',
    eps=2 / 255,
    alpha=2.5 / 255,
    random_start=True,
    adv_ratio=1.0,
    value_range=(0, 255),
    data_preprocessor=data_preprocessor,
    backbone=dict(type='mmmask.CrossViT', arch='18-dagger', img_size=(408, 384),
                  patch_size=(12, 16), drop_path_rate=0.0),
    neck=None,
    head=dict(type='mmmask.MultiBranchLinearClsHead', num_classes=1000, in_channels=[224, 448],
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
# python tools/model_converters/crossvit2mmmask.py crossvit_18_dagger_408.pth \
#     checkpoints/crossvit-18-dagger-408_timm-in1k.pth --config <this config>
load_from = 'checkpoints/crossvit-18-dagger-408_timm-in1k.pth'

dataset_type = 'ImageNet'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='mmmask.RandomRot90', prob_90=0.5, prob_180=0.5, keep_size=True),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bilinear'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=16,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root='data/imagenet', split='train',
                 pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=64,
    num_workers=16,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root='data/imagenet', split='val',
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

optim_wrapper = dict(
    type='AmpOptimWrapper', loss_scale='dynamic',
    optimizer=dict(type='Adam', lr=2e-4, weight_decay=1e-4))
# official custom_lr_scheduler_v1: epoch 0 8e-5 -> 2e-4, then each epoch linearly to half its
# starting value (chained LinearLR segments, per iteration).
param_scheduler = [
    dict(type='LinearLR', start_factor=0.4, end_factor=1.0, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
] + [
    dict(type='LinearLR', start_factor=1.0, end_factor=0.5, by_epoch=True, begin=e, end=e + 1,
         convert_to_iter_based=True) for e in range(1, 6)
]
train_cfg = dict(by_epoch=True, max_epochs=6, val_interval=1)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2, save_best='auto'))
randomness = dict(seed=0)
