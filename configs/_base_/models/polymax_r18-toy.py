# A CPU-sized PolyMaX for the built-in toy NYU scenes (64x64; 12 classes, metric depth, normals):
# a 32-channel ResNet-18, a small kMaX pixel decoder (axial attention at strides 32/16) and, per
# task, a 3-layer k-means transformer decoder with 16 clusters. Same modules as the ConvNeXt-L model.
norm_cfg = dict(type='BN', eps=1e-3, momentum=0.01)
num_classes = 12
kmax_decoder = dict(
    type='mmmask.KMaXTransformerDecoder',
    in_channels=(256, 128, 128),
    os4_channels=64,
    num_layers=(1, 1, 1),
    num_clusters=16,
    channels=64,
    key_channels=32,
    ffn_channels=128,
    num_heads=4,
    mask_channels=32,
    drop_path_rate=0.0,
    norm_cfg=norm_cfg)
model = dict(
    type='mmmask.PolyMaX',
    data_preprocessor=dict(
        type='mmmask.DenseDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size_divisor=32),
    backbone=dict(
        type='mmseg.ResNet', depth=18, stem_channels=32, base_channels=32,
        out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False),
    pixel_decoder=dict(
        type='mmmask.KMaXPixelDecoder',
        in_channels=[32, 64, 128, 256],
        dims=(64, 32, 32, 16),
        num_blocks=(1, 1, 1, 1),
        num_heads=4,
        norm_cfg=norm_cfg),
    heads=dict(
        semantic=dict(
            type='mmmask.PolyMaXSemanticHead',
            num_classes=num_classes,
            decoder=kmax_decoder,
            aux_semantic_head=dict(
                type='mmmask.KMaXAuxSemanticHead', in_channels=(256, 64, 32), channels=64,
                aspp_dilations=(1, 2, 3), low_level_channels=(32, 16), norm_cfg=norm_cfg),
            loss=dict(type='mmmask.KMaXCriterion', insdis_sample_k=128,
                      aux_semantic_sample_k=128)),
        depth=dict(
            type='mmmask.PolyMaXDepthHead', decoder=kmax_decoder, min_depth=1e-3, max_depth=10.0),
        normal=dict(type='mmmask.PolyMaXNormalHead', decoder=kmax_decoder)))
