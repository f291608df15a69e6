# UPerNet + PPMA-Base on ADE20K, 512x512 crops, 160k iterations, 8 GPUs x 2 images (official
# recipe). The backbone starts from the ImageNet-1k classification checkpoint converted with
#   python tools/model_converters/ppma2mmmask.py best.pth checkpoints/ppma-base_in1k.pth --backbone-only
_base_ = [
    '../_base_/models/upernet_ppma.py', '../_base_/datasets/ade20k.py',
    '../_base_/seg_runtime.py', '../_base_/schedules/schedule_160k_adamw_poly.py'
]
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        arch='base',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/ppma-base_in1k.pth',
                      prefix='backbone.')),
    decode_head=dict(in_channels=[80, 160, 320, 512], num_classes=150),
    auxiliary_head=dict(in_channels=320, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))
train_dataloader = dict(batch_size=2)
