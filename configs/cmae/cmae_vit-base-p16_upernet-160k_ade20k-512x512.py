# UPerNet on ADE20K (mmseg) with the cmae ViT-B/16 backbone, pretrained by
# cmae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py.
_base_ = '../_base_/benchmarks/vit-base-p16_upernet-160k_ade20k-512x512.py'
checkpoint = 'work_dirs/cmae_vit-base-p16_8xb512-amp-coslr-300e_in1k/epoch_300.pth'
model = dict(backbone=dict(
    init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')))
