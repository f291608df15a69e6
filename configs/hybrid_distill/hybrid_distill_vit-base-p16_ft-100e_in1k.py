# Fine-tuning on ImageNet-1k (mmpretrain's MAE recipe) with the Hybrid Distill ViT-B/16 backbone,
# pretrained by hybrid_distill_vit-base-p16_8xb256-300e_in1k.py. Paper (DeiT-B + MAE-B teachers,
# 300 epochs): 83.7 top-1.
_base_ = '../_base_/benchmarks/vit-base-p16_ft-100e_in1k.py'
checkpoint = 'work_dirs/hybrid_distill_vit-base-p16_8xb256-300e_in1k/epoch_300.pth'
model = dict(backbone=dict(
    init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')))
