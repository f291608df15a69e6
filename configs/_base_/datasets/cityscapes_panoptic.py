# Cityscapes panoptic (8 things + 11 stuff). mmdet has no Cityscapes panoptic dataset: as
# detectron2, read the COCO-panoptic files that cityscapesscripts' createPanopticImgs writes
# (gtFine/cityscapes_panoptic_{train,val}.json + PNG folders) with CocoPanopticDataset. The json's
# image entries have no city folder, so link the images flat (see configs/pem/README.md):
#   mkdir -p data/cityscapes/leftImg8bit/train_flat
#   ln -s $PWD/data/cityscapes/leftImg8bit/train/*/*.png data/cityscapes/leftImg8bit/train_flat/
# Recipe of detectron2's Mask2Former: short side 0.5-2.0x of 1024 (max 4096), 512x1024 crops,
# flip, colour jitter; test at 1024x2048.
dataset_type = 'CocoPanopticDataset'
data_root = 'data/cityscapes/'
thing_classes = ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')
stuff_classes = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
                 'traffic sign', 'vegetation', 'terrain', 'sky')
metainfo = dict(classes=thing_classes + stuff_classes, thing_classes=thing_classes,
                stuff_classes=stuff_classes)
crop_size = (512, 1024)
train_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='LoadPanopticAnnotations'),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='gtFine/cityscapes_panoptic_train.json',
        data_prefix=dict(img='leftImg8bit/train_flat/', seg='gtFine/cityscapes_panoptic_train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='gtFine/cityscapes_panoptic_val.json',
        data_prefix=dict(img='leftImg8bit/val_flat/', seg='gtFine/cityscapes_panoptic_val/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoPanopticMetric',
    ann_file=data_root + 'gtFine/cityscapes_panoptic_val.json',
    seg_prefix=data_root + 'gtFine/cityscapes_panoptic_val/')
test_evaluator = val_evaluator
