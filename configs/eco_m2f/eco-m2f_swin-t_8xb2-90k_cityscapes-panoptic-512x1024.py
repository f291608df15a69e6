# ECO-M2F step A on Cityscapes panoptic: Mask2Former Swin-T (Mask2Former's Cityscapes recipe:
# 512x1024 crops of images rescaled to 0.5-2x of 1024x2048, 90k iterations, 8 GPUs x 2 images,
# AdamW 1e-4 with poly decay) with the early-exit encoder (random exit per iteration ∝ depth).
#
# mmdet has no Cityscapes panoptic dataset: as detectron2, we read the COCO-panoptic files that
# cityscapesscripts' createPanopticImgs writes (gtFine/cityscapes_panoptic_{train,val}.json and the
# PNG folders next to them) with CocoPanopticDataset and the 19 evaluated classes (8 things, 11
# stuff; names as in that json). Its image entries have no city folder: link the images flat,
#   cd data/cityscapes/leftImg8bit && mkdir -p train_flat && ln -s $PWD/train/*/*.png train_flat/
# (same for val). See README.md.
_base_ = ['mmdet::mask2former/mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco-panoptic.py']
custom_imports = dict(imports=['mmmask'], allow_failed_imports=False)
thing_classes = ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')
stuff_classes = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
                 'traffic sign', 'vegetation', 'terrain', 'sky')
metainfo = dict(classes=thing_classes + stuff_classes, thing_classes=thing_classes,
                stuff_classes=stuff_classes)
num_things_classes, num_stuff_classes = 8, 11
num_classes = num_things_classes + num_stuff_classes
crop_size = (512, 1024)
data_preprocessor = dict(
    batch_augments=[
        dict(type='BatchFixedSizePad', size=crop_size, img_pad_value=0, pad_mask=True,
             mask_pad_value=0, pad_seg=True, seg_pad_value=255)
    ])
model = dict(
    type='mmmask.ECOMask2Former',
    train_gate_only=False,
    data_preprocessor=data_preprocessor,
    panoptic_head=dict(
        type='mmmask.ECOMask2FormerHead',
        gate_loss=dict(beta=0.003, loss_weight=1.0),
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1]),
        pixel_decoder=dict(
            type='mmmask.EarlyExitMSDeformAttnPixelDecoder',
            num_gates=4,
            exit_mode='full',
            train_exit_mode='sample',
            exit_sampling_weights=None)),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes,
                              num_stuff_classes=num_stuff_classes),
    test_cfg=dict(panoptic_on=True, semantic_on=False, instance_on=False))
find_unused_parameters = True

dataset_type = 'CocoPanopticDataset'
data_root = 'data/cityscapes/'
backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True, backend_args=backend_args),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args=backend_args),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True, backend_args=backend_args),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='LoadPanopticAnnotations', backend_args=backend_args),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='gtFine/cityscapes_panoptic_train.json',
        data_prefix=dict(img='leftImg8bit/train_flat/', seg='gtFine/cityscapes_panoptic_train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='gtFine/cityscapes_panoptic_val.json',
        data_prefix=dict(img='leftImg8bit/val_flat/', seg='gtFine/cityscapes_panoptic_val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True,
    type='CocoPanopticMetric',
    ann_file=data_root + 'gtFine/cityscapes_panoptic_val.json',
    seg_prefix=data_root + 'gtFine/cityscapes_panoptic_val/',
    backend_args=backend_args)
test_evaluator = val_evaluator

max_iters = 90000
param_scheduler = dict(_delete_=True, type='PolyLR', eta_min=0, power=0.9, begin=0,
                       end=max_iters, by_epoch=False)
interval = 5000
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=interval)
default_hooks = dict(checkpoint=dict(interval=interval))
