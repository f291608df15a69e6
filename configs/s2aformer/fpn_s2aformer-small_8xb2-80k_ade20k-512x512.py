# Semantic FPN + S2AFormer-Small on ADE20K, 512x512 crops, 80k iterations at batch 16 (8 GPUs x 2).
# ASSUMED protocol: the paper's segmentation settings could not be read here; this is the
# Semantic-FPN protocol of PVT/PVTv2 that efficient hierarchical ViTs report on ADE20K (AdamW
# lr 1e-4, wd 1e-4, poly decay 0.9, single-scale test). The backbone starts from the ImageNet-1k
# classifier trained with s2aformer-small_8xb128_in1k.py.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py', '../_base_/datasets/ade20k.py',
    '../_base_/seg_runtime.py'
]
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmmask.S2AFormer',
        arch='small',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/s2aformer-small_in1k.pth',
                      prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=256, num_outs=4),
    decode_head=dict(num_classes=150))
train_dataloader = dict(batch_size=2)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
    clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=80000, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=80000, val_interval=8000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=8000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
