# Mask R-CNN + FPN with a PPMA-T backbone on COCO, 1x schedule (12 epochs), 8 GPUs x 2 images,
# AdamW lr 1e-4 wd 0.05 (official recipe). Built on mmdet's own base configs.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py', 'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmmask'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmask.PPMA',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        out_norm=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/ppma-tiny_in1k.pth',
                      prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 256, 512]))
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                   weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}))
train_dataloader = dict(batch_size=2)
