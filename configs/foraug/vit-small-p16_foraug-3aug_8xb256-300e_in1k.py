# ForAug / ForNet on ImageNet-1k (Nauen et al., arXiv 2503.09399): ViT-S/16 trained from scratch on
# ForNet recombinations with the 3-Augment recipe (DeiT III, Touvron et al. 2022) applied after the
# recombination (official paste_pre_transform=True). Paper (3-Augment): ViT-S 79.1 -> 81.4 top-1.
# Data: ForNet in the official folder layout at data/fornet (download + patch with tobna/ForAug, or
# build with tools/analysis_tools/foraug_prepare.py), ImageNet val for evaluation.
# Recombination: official defaults (background 'all', pruning 0.8, jitter 0.3, 'range' size mode,
# uniform position, edge blur sigma 4). Schedule/optimiser: DeiT III's 3-Augment recipe (LAMB, BCE,
# Mixup 0.8 / CutMix 1.0, 5 warm-up epochs, cosine); the epoch count, batch size and learning rate
# are our assumptions where the paper's exact values could not be read (see README).
_base_ = ['../_base_/cls_runtime.py']

data_preprocessor = dict(
    num_classes=1000, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
bgr_mean = data_preprocessor['mean'][::-1]
model = dict(
    type='ImageClassifier',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='VisionTransformer', arch='deit-small', img_size=224, patch_size=16,
                  drop_path_rate=0.05),
    neck=None,
    head=dict(type='VisionTransformerClsHead', num_classes=1000, in_channels=384,
              loss=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
              init_cfg=[dict(type='TruncNormal', layer='Linear', std=.02)]),
    init_cfg=[dict(type='TruncNormal', layer='Linear', std=.02),
              dict(type='Constant', layer='LayerNorm', val=1., bias=0.)],
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))

fornet_root = 'data/fornet/'
three_augment = dict(
    type='RandomChoice',
    transforms=[[dict(type='RandomGrayscale', prob=1.0, keep_channels=True)],
                [dict(type='Solarize', thr=128, prob=1.0)],
                [dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf',
                      prob=1.0)]])
train_pipeline = [
    dict(type='LoadImageFromFile'),  # the background
    dict(type='mmmask.LoadForegroundFromFile'),
    dict(type='mmmask.ForegroundBackgroundRecombine', fg_scale_jitter=0.3, fg_size_mode='range',
         fg_bates_n=1, mask_smoothing_sigma=4.0, rel_jut_out=0.0),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.08, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    three_augment,
    dict(type='ColorJitter', brightness=0.3, contrast=0.3, saturation=0.3),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=256,
    num_workers=10,
    persistent_workers=False,  # ForNetEpochHook reaches the workers (orig_img_prob schedules)
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='mmmask.ForNetDataset',
        data_root=fornet_root,
        split='train',
        background_combination='all',
        pruning_ratio=0.8,
        orig_img_prob=0.0,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256,
    num_workers=10,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='mmpretrain.ImageNet', data_root='data/imagenet', split='val',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(type='Lamb', lr=3e-3, weight_decay=0.02),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'.cls_token': dict(decay_mult=0.0),
                                    '.pos_embed': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=5)
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=5)
val_cfg = dict()
test_cfg = dict()
# ForNetEpochHook (registered with mmmask's datasets) advances ForNetDataset.epoch for the
# orig_img_prob schedules ('linear', 'cos'); harmless with orig_img_prob=0.
custom_imports = dict(imports=['mmmask', 'mmmask.datasets'], allow_failed_imports=False)
custom_hooks = [dict(type='mmmask.ForNetEpochHook')]
auto_scale_lr = dict(base_batch_size=2048)  # 8 GPUs x 256
