# ImageNet-1k for MAE-family pretraining (He et al., 2022): RandomResizedCrop(0.2, 1) + flip at
# 224 px, ImageNet mean/std in SelfSupDataPreprocessor, 512 images per GPU (8 GPUs: 4096).
data_preprocessor = dict(
    type='SelfSupDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs')
]
train_dataloader = dict(
    batch_size=512,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='mmpretrain.ImageNet', data_root='data/imagenet/', split='train',
                 pipeline=train_pipeline))
