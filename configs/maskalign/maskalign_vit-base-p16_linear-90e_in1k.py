# Linear probe on ImageNet-1k with the maskalign ViT-B/16 backbone, pretrained by
# maskalign_vit-base-p16_8xb128-200e_in1k.py.
_base_ = '../_base_/benchmarks/vit-base-p16_linear-90e_in1k.py'
checkpoint = 'work_dirs/maskalign_vit-base-p16_8xb128-200e_in1k/epoch_200.pth'
model = dict(backbone=dict(
    init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')))
