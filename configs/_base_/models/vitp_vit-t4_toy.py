# CPU-sized ViT-P point classifier for the built-in toy scenes (12 classes, 96 point tokens per
# forward): a 4-layer, 96-wide ViT over 16x16-pixel tokens of the 64x64 scenes upsampled to
# 128x128 (8x8 grid). The tokens are a "hybrid" ViT's (original ViT paper): the first two stages
# of the toy-pretrained ResNet-18-c32 (configs/quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py)
# then a 2x2 patch embedding — plain pixel patches do not learn the toy digits from ~1k scenes on
# CPU (README.md). The published ViT-P is the plain DINOv2 ViT of _base_/models/vitp_vit-b14.py.
vitp_classifier = dict(
    type='mmmask.ViTPPointClassifier',
    data_preprocessor=dict(
        type='ImgDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    encoder=dict(
        type='mmmask.ViTPEncoder',
        arch=dict(embed_dims=96, num_layers=4, num_heads=4, feedforward_channels=384),
        img_size=128,
        patch_size=16,
        drop_path_rate=0.0,
        layer_scale_init_value=1.0,
        pos_embed_init='sincos',
        stem=dict(
            type='mmpretrain.ResNet',
            depth=18,
            stem_channels=32,
            base_channels=32,
            num_stages=2,
            strides=(1, 2),
            dilations=(1, 1),
            out_indices=(1, ),
            init_cfg=dict(
                type='Pretrained', prefix='backbone.',
                checkpoint='work_dirs/resnet18-c32_1xb32-10e_toy-cls-64x64/epoch_10.pth')),
        stem_out=(64, 8)),
    num_classes=12,
    num_points=96)
