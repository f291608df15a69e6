# UPerNet on ADE20K with a MTO-pretrained ViT-B/16 backbone (mmseg MAE recipe).
_base_ = '../_base_/benchmarks/vit-base-p16_upernet-160k_ade20k-512x512.py'
checkpoint = 'work_dirs/mto_vit-base-p16_8xb256-800e_in1k/epoch_800.pth'
model = dict(backbone=dict(
    init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')))
