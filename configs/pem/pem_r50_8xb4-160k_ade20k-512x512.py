# PEM R50 semantic segmentation on ADE20K (official pem_R50_bs32_160k): 512x512 crops of images
# resized to 0.5-2.0x of 512 short side, 160k iterations, 8 GPUs x 4 images, lr 4e-4 cosine.
# Paper: 45.5 mIoU (single scale), 35.7 FPS, 46.9 GFLOPs, 35.6 M parameters.
_base_ = [
    '../_base_/models/pem_r50.py', '../_base_/datasets/ade20k.py', '../_base_/seg_runtime.py',
    '../_base_/schedules/pem_adamw_cosine_160k.py'
]
crop_size = (512, 512)
model = dict(data_preprocessor=dict(size=crop_size))
# detectron2's semantic mapper crops without a single-category area limit
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
