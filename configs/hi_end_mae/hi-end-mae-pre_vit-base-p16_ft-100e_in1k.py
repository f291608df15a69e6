# vit-base-p16_ft-100e_in1k: transfer of the Hi-End-MAE pretraining
# hi-end-mae_vit-base-p16_8xb512-amp-coslr-800e_in1k (backbone weights only).
_base_ = '../_base_/benchmarks/vit-base-p16_ft-100e_in1k.py'
model = dict(backbone=dict(init_cfg=dict(
    type='Pretrained', prefix='backbone.',
    checkpoint='work_dirs/hi-end-mae_vit-base-p16_8xb512-amp-coslr-800e_in1k/epoch_800.pth')))
