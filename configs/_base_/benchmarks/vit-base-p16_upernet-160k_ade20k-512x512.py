# Semantic segmentation transfer of a pretrained ViT-B/16: mmseg's MAE UPerNet recipe on ADE20K
# (512x512, 160k iterations at 8x2, AdamW 1e-4, layer decay 0.65, Feature2Pyramid from blocks
# 4/6/8/12), with mmpretrain's VisionTransformer as the backbone so that an mmmask pretraining
# checkpoint loads as is (`init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')`).
# Method configs set `model.backbone.init_cfg.checkpoint`.
_base_ = ['mmseg::mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py']
custom_imports = dict(imports=['mmmask', 'mmpretrain.models'], allow_failed_imports=False)
model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmpretrain.VisionTransformer',
        arch='base',
        img_size=512,
        patch_size=16,
        drop_path_rate=0.1,
        out_indices=[3, 5, 7, 11],
        out_type='featmap',
        final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')))
