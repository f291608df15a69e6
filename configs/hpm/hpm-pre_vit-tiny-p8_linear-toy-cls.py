# vit-tiny-p8_linear-toy-cls: transfer of the HPM pretraining
# hpm_vit-tiny-p8_1xb64-60e_toy-pretrain (backbone weights only).
_base_ = '../_base_/benchmarks/vit-tiny-p8_linear-toy-cls.py'
model = dict(backbone=dict(init_cfg=dict(
    type='Pretrained', prefix='backbone.',
    checkpoint='work_dirs/hpm_vit-tiny-p8_1xb64-60e_toy-pretrain/epoch_60.pth')))
