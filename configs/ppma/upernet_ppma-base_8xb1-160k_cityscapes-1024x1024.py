# UPerNet + PPMA-Base on Cityscapes, 1024x1024 crops, 160k iterations, 8 GPUs x 1 image
# (official recipe; slide inference with 1024 windows and stride 768).
_base_ = [
    '../_base_/models/upernet_ppma.py', '../_base_/datasets/cityscapes_1024x1024.py',
    '../_base_/seg_runtime.py', '../_base_/schedules/schedule_160k_adamw_poly.py'
]
crop_size = (1024, 1024)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        arch='base',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/ppma-base_in1k.pth',
                      prefix='backbone.')),
    decode_head=dict(in_channels=[80, 160, 320, 512], num_classes=19),
    auxiliary_head=dict(in_channels=320, num_classes=19),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(768, 768)))
train_cfg = dict(val_interval=4000)
