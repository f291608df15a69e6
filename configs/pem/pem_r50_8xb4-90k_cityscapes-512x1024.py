# PEM R50 semantic segmentation on Cityscapes (official pem_R50_bs32_90k): 512x1024 crops of images
# resized to 0.5-2.0x of 1024x2048, 90k iterations, 8 GPUs x 4 images, lr 7e-4 cosine to 0, SyncBN
# in the backbone; whole-image 1024x2048 test. Paper: 79.9 mIoU, 13.8 FPS, 240 GFLOPs.
_base_ = [
    '../_base_/models/pem_r50.py', '../_base_/datasets/cityscapes_1024x1024.py',
    '../_base_/seg_runtime.py', '../_base_/schedules/pem_adamw_cosine_160k.py'
]
crop_size = (512, 1024)
num_classes = 19
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=False),
    decode_head=dict(num_classes=num_classes,
                     loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(lr=7e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=90000, eta_min=0.0, begin=0, end=90000, by_epoch=False)
]
train_cfg = dict(max_iters=90000)
