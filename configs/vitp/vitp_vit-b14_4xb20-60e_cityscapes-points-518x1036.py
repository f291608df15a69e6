# ViT-P point classifier, ViT-B/14 on Cityscapes (19 classes), as the official
# vitb14_Cityscapes.yaml: 518x1036 crops, 250 points, 4 GPUs x 20 images, 60 epochs of 345
# iterations, SGD lr 1e-2 (point embedding 1e-2), cosine, fp16.
# Cheap labels: the official training list adds the ~20k train_extra images with their *coarse*
# annotations (gtCoarse) to the 2,975 fine ones — the paper's point that coarse labels suffice for
# the classifier. Here that is the second dataset of the ConcatDataset below (labelTrainIds made
# with cityscapesscripts' createTrainIdLabelImgs, which converts gtCoarse too).
_base_ = [
    '../_base_/seg_runtime.py', '../_base_/datasets/cityscapes_1024x1024.py',
    '../_base_/schedules/vitp_sgd_cosine_60e.py', '../_base_/models/vitp_vit-b14_cityscapes.py'
]
num_points = 250
crop_size = (518, 1036)
model = {{_base_.vitp_classifier}}
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='mmmask.SegRandomResizedCrop', size=crop_size, scale=(0.5, 1.0),
         ratio=(0.75, 1.3333)),
    dict(type='mmmask.SegRandomRotate', degree=60),
    dict(type='RandomFlip', prob=0.5),
    dict(type='mmmask.SampleSegmentPoints', num_points=num_points),
    dict(type='mmmask.PackPointInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='mmmask.SampleSegmentPoints', num_points=num_points),
    dict(type='Resize', scale=(crop_size[1], crop_size[0]), keep_ratio=False),
    dict(type='mmmask.PackPointInputs'),
]
data_root = 'data/cityscapes/'
fine = dict(
    type='CityscapesDataset',
    data_root=data_root,
    data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
    pipeline=train_pipeline)
coarse = dict(
    type='CityscapesDataset',
    data_root=data_root,
    data_prefix=dict(img_path='leftImg8bit/train_extra', seg_map_path='gtCoarse/train_extra'),
    seg_map_suffix='_gtCoarse_labelTrainIds.png',
    pipeline=train_pipeline)
train_dataloader = dict(
    batch_size=20, dataset=dict(_delete_=True, type='ConcatDataset', datasets=[fine, coarse]))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmmask.PointAccuracy')
test_evaluator = val_evaluator
epoch_length = 345
max_iters = 60 * epoch_length
base_lr = 1e-2
optim_wrapper = dict(
    optimizer=dict(lr=base_lr),
    paramwise_cfg=dict(custom_keys={'encoder.point_embed': dict(lr_mult=1e-2 / base_lr)}))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_iters, eta_min=0.0, by_epoch=False, begin=0,
         end=max_iters)
]
train_cfg = dict(max_iters=max_iters, val_interval=3 * epoch_length)
default_hooks = dict(checkpoint=dict(interval=3 * epoch_length))
