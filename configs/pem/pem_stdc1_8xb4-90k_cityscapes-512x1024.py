# PEM STDC1 semantic segmentation on Cityscapes (official pem_STDC1_bs32_90k: the R50 recipe with
# the STDC1 backbone). Paper: 78.3 mIoU, 24.3 FPS, 92 GFLOPs, 17.0 M parameters.
_base_ = './pem_r50_8xb4-90k_cityscapes-512x1024.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmask.STDCNetS4',
        arch='stdc1',
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/stdc1_in1k.pth',
                      prefix='backbone.')),
    decode_head=dict(in_channels=[64, 256, 512, 1024]))
