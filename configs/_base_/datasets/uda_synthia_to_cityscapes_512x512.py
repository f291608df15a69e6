# SYNTHIA (RAND-CITYSCAPES) -> Cityscapes, DAFormer's data setting: as GTA -> Cityscapes
# (uda_gta_to_cityscapes_512x512.py) with SYNTHIA frames resized to 1280x760.
# Data: tools/dataset_converters/synthia.py data/synthia (labels -> *_labelTrainIds.png + RCS
# stats). The model keeps the 19 Cityscapes classes (SYNTHIA never labels terrain, truck, train).
# Evaluation: the 19-class mIoU plus the UDA benchmark numbers mIoU16 (the 16 SYNTHIA classes)
# and mIoU13 (also without wall, fence, pole) from the same intersections/unions
# (mmmask.ClassSubsetIoUMetric). With mmseg's plain IoUMetric, mIoU16 = mean of the 16 per-class
# IoUs; "mIoU19 * 19 / 16" (DAFormer's README) only holds when the 3 absent classes score 0.
_base_ = ['./uda_gta_to_cityscapes_512x512.py']
source_data_root = 'data/synthia/'
crop_size = (512, 512)
synthia_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=(1280, 760), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
source_train = dict(
    _delete_=True,
    type='mmmask.SynthiaDataset',
    data_root=source_data_root,
    data_prefix=dict(img_path='RGB', seg_map_path='GT/LABELS'),
    pipeline=synthia_train_pipeline)
rcs_cfg = dict(stats_file=source_data_root + 'sample_class_stats.json')
train_dataloader = dict(dataset=dict(source=source_train))
synthia_16_classes = [
    'road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light', 'traffic sign',
    'vegetation', 'sky', 'person', 'rider', 'car', 'bus', 'motorcycle', 'bicycle'
]
synthia_13_classes = [
    'road', 'sidewalk', 'building', 'traffic light', 'traffic sign', 'vegetation', 'sky',
    'person', 'rider', 'car', 'bus', 'motorcycle', 'bicycle'
]
val_evaluator = dict(
    _delete_=True,
    type='mmmask.ClassSubsetIoUMetric',
    iou_metrics=['mIoU'],
    class_subsets=dict(mIoU16=synthia_16_classes, mIoU13=synthia_13_classes))
test_evaluator = val_evaluator
