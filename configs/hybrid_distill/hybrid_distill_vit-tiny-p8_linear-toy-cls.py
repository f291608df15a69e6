# Linear probe on the built-in digits of the toy Hybrid Distill ViT, pretrained by
# hybrid_distill_vit-tiny-p8_1xb64-30e_toy-pretrain.py.
_base_ = '../_base_/benchmarks/vit-tiny-p8_linear-toy-cls.py'
checkpoint = 'work_dirs/hybrid_distill_vit-tiny-p8_1xb64-30e_toy-pretrain/epoch_30.pth'
model = dict(backbone=dict(
    init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')))
