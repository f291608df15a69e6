# ViT-P point classifier, ViT-B/14 on ADE20K (150 classes), as the official vitb14_ADE20k.yaml:
# 518x518 crops, 250 points per image, 4 GPUs x 20 images, 60 epochs of 320 iterations, SGD
# lr 9e-3 (point embedding 1e-2), cosine, fp16. Starts from DINOv2 ViT-B/14 (converted, README).
_base_ = [
    '../_base_/seg_runtime.py', '../_base_/datasets/ade20k.py',
    '../_base_/schedules/vitp_sgd_cosine_60e.py', '../_base_/models/vitp_vit-b14.py'
]
num_points = 250
model = {{_base_.vitp_classifier}}
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='mmmask.SegRandomResizedCrop', size=(518, 518), scale=(0.5, 1.0),
         ratio=(0.75, 1.3333)),  # nearest for image and labels, as published
    dict(type='mmmask.SegRandomRotate', degree=60),
    dict(type='RandomFlip', prob=0.5),
    dict(type='mmmask.SampleSegmentPoints', num_points=num_points),
    dict(type='mmmask.PackPointInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='mmmask.SampleSegmentPoints', num_points=num_points),
    dict(type='Resize', scale=(518, 518), keep_ratio=False),
    dict(type='mmmask.PackPointInputs'),
]
train_dataloader = dict(batch_size=20, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmmask.PointAccuracy')
test_evaluator = val_evaluator
auto_scale_lr = dict(enable=False, base_batch_size=80)
