# PolyMaX (WACV'24) with ConvNeXt-L on NYUD-v2: kMaX-DeepLab's backbone, axial-attention pixel
# decoder and k-means transformer decoders (one per task, K = 128 clusters each), with the
# semantic, depth and surface-normal heads. Single-task configs set the other heads to None.
norm_cfg = dict(type='SyncBN', eps=1e-3, momentum=0.01)  # TF BN: eps 1e-3, momentum 0.99
num_classes = 40
kmax_decoder = dict(
    type='mmmask.KMaXTransformerDecoder',
    in_channels=(2048, 1024, 512),  # pixel decoder OS32/16/8 outputs (4 x dims)
    os4_channels=256,
    num_layers=(2, 2, 2),
    num_clusters=128,
    channels=256,
    key_channels=128,
    ffn_channels=2048,
    num_heads=8,
    mask_channels=128,
    drop_path_rate=0.0,  # ASSUMED from deeplab2's multi-task kMaX default (keep prob 1.0)
    norm_cfg=norm_cfg)
model = dict(
    type='mmmask.PolyMaX',
    data_preprocessor=dict(
        type='mmmask.DenseDataPreprocessor',
        mean=[127.5, 127.5, 127.5],  # kMaX maps pixels to [-1, 1]
        std=[127.5, 127.5, 127.5],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size_divisor=32),
    backbone=dict(
        type='mmpretrain.ConvNeXt',
        arch='large',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.4,  # ASSUMED (kMaX: 0.6-0.7 on COCO/ADE20K, far larger datasets)
        layer_scale_init_value=1e-6,
        gap_before_final_norm=False,  # its per-stage LayerNorms act as kMaX's input norms
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/convnext/'
            'convnext-large_in21k-pre-3rdparty_in1k-384px_20221219-6d38dd66.pth',
            prefix='backbone.')),
    pixel_decoder=dict(
        type='mmmask.KMaXPixelDecoder',
        in_channels=[192, 384, 768, 1536],
        dims=(512, 256, 128, 64),
        num_blocks=(1, 5, 1, 1),
        block_types=('axial', 'axial', 'bottleneck', 'bottleneck'),
        num_heads=8,
        in_norm=False,
        norm_cfg=norm_cfg),
    heads=dict(
        semantic=dict(
            type='mmmask.PolyMaXSemanticHead',
            num_classes=num_classes,
            decoder=kmax_decoder,
            aux_semantic_head=dict(
                type='mmmask.KMaXAuxSemanticHead', in_channels=(1536, 384, 192),
                norm_cfg=norm_cfg),
            loss=dict(
                type='mmmask.KMaXCriterion',
                class_weight=3.0, dice_weight=3.0, mask_id_weight=0.3, insdis_weight=1.0,
                aux_semantic_weight=1.0, insdis_sample_k=4096, insdis_sample_temperature=1.5,
                aux_semantic_sample_k=4096, aux_semantic_sample_temperature=2.0)),
        depth=dict(
            type='mmmask.PolyMaXDepthHead',
            decoder=kmax_decoder,
            min_depth=1e-3,
            max_depth=10.0,
            value_mode='bins',
            loss=dict(type='mmmask.SILogRelSqrLoss')),
        normal=dict(
            type='mmmask.PolyMaXNormalHead',
            decoder=kmax_decoder,
            loss=dict(type='mmmask.NormalAngularLoss'))))
