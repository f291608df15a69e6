# PEM (Cavagnero et al., CVPR 2024) semantic segmentation model with a ResNet-50 backbone, as in the
# official configs: torchvision-style R50 (stride in the 3x3 conv), PEM pixel decoder (128 channels,
# 256-channel mask features), 6 PEM decoder layers, 100 queries, Mask2Former matching and losses
# (class 2, mask BCE 5, dice 5 on 12,544 points).
num_classes = 150
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size_divisor=32)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet',
        depth=50,
        deep_stem=False,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=False),  # detectron2's FrozenBN on ADE20K
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    decode_head=dict(
        type='mmmask.PEMSegHead',
        in_channels=[256, 512, 1024, 2048],
        num_classes=num_classes,
        feat_channels=256,
        out_channels=256,
        num_queries=100,
        pixel_decoder=dict(type='mmmask.PEMPixelDecoder', feat_channels=128, norm_cfg=norm_cfg),
        enforce_decoder_input_project=True,
        transformer_decoder=dict(
            type='mmmask.PEMTransformerDecoder', num_layers=6, num_heads=8,
            feedforward_channels=2048, pre_norm=True, norm_cfg=norm_cfg),
        loss_cls=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0,
                      reduction='mean', class_weight=[1.0] * num_classes + [0.1]),
        loss_mask=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, reduction='mean',
                       loss_weight=5.0),
        loss_dice=dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True, reduction='mean',
                       naive_dice=True, eps=1.0, loss_weight=5.0),
        train_cfg=dict(
            num_points=12544,
            oversample_ratio=3.0,
            importance_sample_ratio=0.75,
            assigner=dict(
                type='mmdet.HungarianAssigner',
                match_costs=[
                    dict(type='mmdet.ClassificationCost', weight=2.0),
                    dict(type='mmdet.CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                    dict(type='mmdet.DiceCost', weight=5.0, pred_act=True, eps=1.0)
                ]),
            sampler=dict(type='mmdet.MaskPseudoSampler'))),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
