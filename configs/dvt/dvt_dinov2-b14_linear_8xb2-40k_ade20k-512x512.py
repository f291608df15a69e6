# DVT linear probe on ADE20K (paper setting, official
# evaluation/configs/vitb_ade20k_linear_config.py): as the VOC config, 150 classes, ADE20K data
# as in configs/_base_/datasets/ade20k.py.
_base_ = ['./dvt_dinov2-b14_linear_8xb2-40k_voc12-512x512.py']
model = dict(decode_head=dict(num_classes=150))
dataset_type = 'ADE20KDataset'
data_root = 'data/ade/ADEChallengeData2016'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(512, 512), cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(
    _delete_=True, type=dataset_type, data_root=data_root,
    data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
    pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(
    _delete_=True, type=dataset_type, data_root=data_root,
    data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
    pipeline=test_pipeline))
test_dataloader = val_dataloader
