# DVT linear probe, paper setting (README "voc_denoised"): frozen DINOv2-B/14 + the stage-2 DVT
# denoiser (1 block, trained on stage-1 outputs of 10k VOC images, see
# dvt_dinov2-b14_stage1-518x518.py), linear head on the last layer; official
# evaluation/configs/vitb_voc2012_linear_config.py: 512x512 crops, AdamW 1e-3, poly, 1.5k warm-up,
# 40k iterations, 8 GPUs x 2, slide test 512/341. Baseline (raw DINOv2):
#   --cfg-options model.backbone.denoiser=None model.backbone.denoiser_checkpoint=None
# Difference: the official head is BatchNorm + 1x1 conv (BNHead); ours is mmseg's FCNHead with
# num_convs=0 (the 1x1 conv alone).
_base_ = ['../_base_/seg_runtime.py']
custom_imports = dict(imports=['mmmask.models'], allow_failed_imports=False)
crop_size = (512, 512)
data_preprocessor = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
                         seg_pad_val=255, size=crop_size)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='mmmask.DenoisedViT',
        vit=dict(type='mmpretrain.VisionTransformer', arch='base', img_size=518, patch_size=14,
                 layer_scale_init_value=1e-5, final_norm=True,
                 init_cfg=dict(type='Pretrained', prefix='backbone.', checkpoint=(
                     'https://download.openmmlab.com/mmpretrain/v1.0/dinov2/'
                     'vit-base-p14_dinov2-pre_3rdparty_20230426-ba246503.pth'))),
        denoiser=dict(num_blocks=1),  # PE for the 37x37 training grid, resampled like timm
        denoiser_checkpoint='work_dirs/dvt_dinov2-b14_voc/denoiser.pth',
        freeze_vit=True),
    decode_head=dict(
        type='FCNHead', in_channels=768, in_index=0, channels=768, num_convs=0,
        concat_input=False, dropout_ratio=0.0, num_classes=21, align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

dataset_type = 'PascalVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
                 ann_file='ImageSets/Segmentation/train.txt', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
                 ann_file='ImageSets/Segmentation/val.txt', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

# only the head trains (the DenoisedViT is frozen: ViT by freeze_vit, denoiser by lr_mult 0)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.0, decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=40000, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4000, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
