# GTA5 -> Cityscapes (19 classes), DAFormer's data setting: 2 source + 2 target 512x512 crops per
# iteration; GTA frames resized to 1280x720 and Cityscapes to 1024x512 (keep ratio), random crop
# (cat_max_ratio 0.75), flip 0.5. No photometric distortion in the pipelines: the UDA method
# applies its own colour augmentation (DACS colour jitter + blur). Normalisation and padding to
# the crop are the model's data_preprocessor (see configs/_base_/models/*).
# Data: tools/dataset_converters/gta.py data/gta (labels -> *_labelTrainIds.png + RCS stats);
# Cityscapes with mmseg's tools/dataset_converters/cityscapes.py (*_gtFine_labelTrainIds.png).
# Validation/test: Cityscapes val at 1024x512, whole image, 19-class mIoU.
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes/'
source_data_root = 'data/gta/'
crop_size = (512, 512)
gta_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=(1280, 720), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
cityscapes_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=(1024, 512), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1024, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
source_train = dict(
    type='mmmask.GTADataset',
    data_root=source_data_root,
    data_prefix=dict(img_path='images', seg_map_path='labels'),
    pipeline=gta_train_pipeline)
target_train = dict(
    type='mmseg.CityscapesDataset',
    data_root=data_root,
    data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
    pipeline=cityscapes_train_pipeline)
# DAFormer's rare class sampling (off unless a config sets
# train_dataloader.dataset.rare_class_sampling, e.g. to this):
rcs_cfg = dict(
    min_pixels=3000,
    class_temp=0.01,
    min_crop_ratio=0.5,
    stats_file=source_data_root + 'sample_class_stats.json')
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='mmmask.UDADataset',
        source=source_train,
        target=target_train))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
