# Fine-tune a MTO-pretrained ViT-B/16 on ImageNet-1k (mmpretrain MAE fine-tuning recipe).
_base_ = '../_base_/benchmarks/vit-base-p16_ft-100e_in1k.py'
checkpoint = 'work_dirs/mto_vit-base-p16_8xb256-800e_in1k/epoch_800.pth'
model = dict(backbone=dict(
    init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')))
