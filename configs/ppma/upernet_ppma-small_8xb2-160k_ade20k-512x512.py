# UPerNet + PPMA-Small on ADE20K: the PPMA-T recipe with the small backbone.
_base_ = './upernet_ppma-tiny_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(
        arch='small',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/ppma-small_in1k.pth',
                      prefix='backbone.')),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))
