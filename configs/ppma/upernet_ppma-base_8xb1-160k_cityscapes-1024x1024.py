# UPerNet + PPMA-Base on Cityscapes: the PPMA-T recipe with the base backbone.
_base_ = './upernet_ppma-tiny_8xb1-160k_cityscapes-1024x1024.py'
model = dict(
    backbone=dict(
        arch='base',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/ppma-base_in1k.pth',
                      prefix='backbone.')),
    decode_head=dict(in_channels=[80, 160, 320, 512]),
    auxiliary_head=dict(in_channels=320))
