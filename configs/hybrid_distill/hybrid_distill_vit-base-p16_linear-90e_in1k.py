# Linear probe on ImageNet-1k with the Hybrid Distill ViT-B/16 backbone, pretrained by
# hybrid_distill_vit-base-p16_8xb256-300e_in1k.py (the paper reports no linear probe).
_base_ = '../_base_/benchmarks/vit-base-p16_linear-90e_in1k.py'
checkpoint = 'work_dirs/hybrid_distill_vit-base-p16_8xb256-300e_in1k/epoch_300.pth'
model = dict(backbone=dict(
    init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')))
