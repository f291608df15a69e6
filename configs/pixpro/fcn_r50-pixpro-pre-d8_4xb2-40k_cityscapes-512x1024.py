# Transfer: FCN (dilated ResNet-50, output stride 8) on Cityscapes, 40k iterations, initialised
# from the converted PixPro backbone (tools/model_converters/pixpro2mmmask.py --backbone-only).
# PixPro pretrains a plain ResNet-50 (7x7 stem), so mmseg's ResNetV1c (deep stem) of the base
# config is replaced by mmseg's ResNet with the same dilations/strides.
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb2-40k_cityscapes-512x1024.py'
custom_imports = dict(imports=['mmmask'], allow_failed_imports=False)
model = dict(
    pretrained=None,
    backbone=dict(
        type='ResNet',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/pixpro_r50_400ep_backbone.pth',
                      prefix='backbone.')))
