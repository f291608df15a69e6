# PEM STDC2 semantic segmentation on Cityscapes. Paper: 79.0 mIoU, 22.0 FPS, 118 GFLOPs.
_base_ = './pem_stdc1_8xb4-90k_cityscapes-512x1024.py'
model = dict(
    backbone=dict(arch='stdc2', init_cfg=dict(checkpoint='checkpoints/stdc2_in1k.pth')))
