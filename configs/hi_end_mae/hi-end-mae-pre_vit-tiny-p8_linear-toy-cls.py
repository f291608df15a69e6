# vit-tiny-p8_linear-toy-cls: transfer of the Hi-End-MAE pretraining
# hi-end-mae_vit-tiny-p8_1xb64-30e_toy-pretrain (backbone weights only).
_base_ = '../_base_/benchmarks/vit-tiny-p8_linear-toy-cls.py'
model = dict(backbone=dict(init_cfg=dict(
    type='Pretrained', prefix='backbone.',
    checkpoint='work_dirs/hi-end-mae_vit-tiny-p8_1xb64-30e_toy-pretrain/epoch_30.pth')))
