# PEM STDC2 semantic segmentation on ADE20K (schedule as the STDC1 config; see its note).
# Paper: 45.0 mIoU, 36.3 FPS, 19.3 GFLOPs, 21.0 M parameters.
_base_ = './pem_stdc1_8xb4-90k_ade20k-512x512.py'
model = dict(
    backbone=dict(arch='stdc2',
                  init_cfg=dict(checkpoint='checkpoints/stdc2_in1k.pth')))
