# UPerNet + PPMA-Small on Cityscapes: the PPMA-T recipe with the small backbone.
_base_ = './upernet_ppma-tiny_8xb1-160k_cityscapes-1024x1024.py'
model = dict(
    backbone=dict(
        arch='small',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/ppma-small_in1k.pth',
                      prefix='backbone.')),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))
