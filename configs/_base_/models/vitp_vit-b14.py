# ViT-P point classifier, ViT-B/14 as published (sajjad-sh33/ViT-P, configs/OneFormer/vitb14_*.yaml):
# DINOv2 ViT-B/14 (D 768, 12 layers, 12 heads, LayerScale 1e-5, uniform drop path 0.3), 250 point
# tokens per forward, final LN + Linear per point. Weights start from DINOv2's ViT-B/14 pretrain,
# converted with tools/model_converters/vitp2mmmask.py (see configs/vitp/README.md).
vitp_classifier = dict(
    type='mmmask.ViTPPointClassifier',
    data_preprocessor=dict(
        type='ImgDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    encoder=dict(
        type='mmmask.ViTPEncoder',
        arch='base',
        img_size=518,
        patch_size=14,
        drop_path_rate=0.3,
        drop_path_uniform=True,
        layer_scale_init_value=1e-5,
        init_cfg=dict(type='Pretrained', prefix='encoder.',
                      checkpoint='checkpoints/dinov2_vitb14_pretrain_mmmask.pth')),
    num_classes=150,
    num_points=250)
