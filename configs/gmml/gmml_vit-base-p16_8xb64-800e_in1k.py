# GMML (Atito et al., arXiv 2205.14986) pretraining of ViT-B/16 on ImageNet-1k with the official
# recipe of Sara-Ahmed/GMML main.py: 800 epochs, 64 images/GPU x 8, two global crops
# RRC(0.05, 1) + flip, light colour jitter (p 0.3) and blur (p 0.1) on the clean crops, group
# corruption (drop_perc 0.75, noise, drop_align 1, replace 0.3), LN(mean of blocks 6/8/10/12),
# RECHead, L1 on corrupted pixels; AdamW lr 5e-4 x bs/256 (cosine to 1e-6, 10 warmup epochs),
# weight decay cosine 0.04 -> 0.4 (no decay on biases/norms), clip 3.0, fp16, drop path 0.1.
#   bash tools/dist_train.sh configs/gmml/gmml_vit-base-p16_8xb64-800e_in1k.py 8
_base_ = ['../_base_/pretrain_runtime.py']
default_scope = 'mmpretrain'
custom_imports = dict(imports=['mmmask.models'], allow_failed_imports=False)

dataset_type = 'ImageNet'
data_root = 'data/imagenet/'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    to_rgb=True)
view_pipeline = [
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.05, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomApply', prob=0.3,
         transforms=[dict(type='ColorJitter', brightness=0.1, contrast=0.1, saturation=0.1,
                          hue=0.01)]),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=0.1),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline))

model = dict(
    type='mmmask.GMML',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='mmmask.MaskedViT', fixed_pos_embed=False, arch='b', img_size=224,
                  patch_size=16, drop_path_rate=0.1),
    head=dict(type='mmmask.GMMLReconHead', in_dim=768, in_chans=3, patch_size=16),
    mask_generator=dict(type='mmmask.GMMLCorruption', drop_perc=0.75, drop_replace=0.3,
                        drop_align=1, drop_type='noise'),
    recons_layers=(5, 7, 9, 11),
    drop_only=True,
    num_global_views=2,
    pos_interpolation='dino',
    init_cfg=[
        dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.0),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])

# lr = 5e-4 * 512 / 256
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.04),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=790, eta_min=1e-6, by_epoch=True, begin=10, end=800,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingParamScheduler', param_name='weight_decay', eta_min=0.4,
         T_max=800, by_epoch=True, begin=0, end=800, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=800)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=20, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=512)
randomness = dict(seed=0, diff_rank_seed=True)
