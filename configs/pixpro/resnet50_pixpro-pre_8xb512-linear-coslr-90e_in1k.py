# Linear probe on ImageNet-1k of the converted PixPro ResNet-50 backbone (frozen, global pooled
# C5 + linear classifier): mmpretrain's self-supervised linear benchmark (LARS, 90 epochs).
_base_ = 'mmpretrain::byol/benchmarks/resnet50_8xb512-linear-coslr-90e_in1k.py'
model = dict(backbone=dict(
    frozen_stages=4,
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/pixpro_r50_400ep_backbone.pth',
                  prefix='backbone.')))
