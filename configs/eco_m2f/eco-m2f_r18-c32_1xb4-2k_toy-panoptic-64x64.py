# ECO-M2F step A on the built-in toy panoptic scenes (64x64, 10 digit things + sky/ground stuff),
# CPU-sized: a ResNet-18 with 32 base channels (random init), 64-d pixel decoder, a 6-layer
# early-exit MSDeformAttn encoder (4 gates: exits 2..6), 3 decoder layers, 20 queries.
# Each training iteration exits the encoder at a random depth drawn ∝ (2, 3, 4, 5, 6) ("weighted
# stochastic depth"); validation runs the full encoder (the gate is trained in step C).
_base_ = [
    '../_base_/det_runtime.py', '../_base_/datasets/toy_coco_panoptic.py',
    '../_base_/schedules/toy_2k.py'
]
num_things_classes = 10
num_stuff_classes = 2
num_classes = num_things_classes + num_stuff_classes
feat = 64
data_preprocessor = dict(
    type='DetDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_size_divisor=32,
    pad_mask=True,
    mask_pad_value=0,
    pad_seg=True,
    seg_pad_value=255)
model = dict(
    type='mmmask.ECOMask2Former',
    train_gate_only=False,
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet',
        depth=18,
        stem_channels=32,
        base_channels=32,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    panoptic_head=dict(
        type='mmmask.ECOMask2FormerHead',
        gate_loss=dict(beta=0.0, loss_weight=1.0),
        in_channels=[32, 64, 128, 256],
        strides=[4, 8, 16, 32],
        feat_channels=feat,
        out_channels=feat,
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        num_queries=20,
        num_transformer_feat_level=3,
        pixel_decoder=dict(
            type='mmmask.EarlyExitMSDeformAttnPixelDecoder',
            num_gates=4,
            exit_mode='full',
            train_exit_mode='sample',
            exit_sampling_weights=None,  # ∝ depth: 2:3:4:5:6
            num_outs=3,
            norm_cfg=dict(type='GN', num_groups=32),
            act_cfg=dict(type='ReLU'),
            encoder=dict(
                num_layers=6,
                layer_cfg=dict(
                    self_attn_cfg=dict(
                        embed_dims=feat, num_heads=4, num_levels=3, num_points=4, dropout=0.0,
                        batch_first=True),
                    ffn_cfg=dict(
                        embed_dims=feat, feedforward_channels=128, num_fcs=2, ffn_drop=0.0,
                        act_cfg=dict(type='ReLU', inplace=True)))),
            positional_encoding=dict(num_feats=feat // 2, normalize=True)),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=feat // 2, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True,
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=feat, num_heads=4, dropout=0.0, batch_first=True),
                cross_attn_cfg=dict(embed_dims=feat, num_heads=4, dropout=0.0, batch_first=True),
                ffn_cfg=dict(
                    embed_dims=feat, feedforward_channels=256, num_fcs=2, ffn_drop=0.0,
                    act_cfg=dict(type='ReLU', inplace=True))),
            init_cfg=None),
        loss_cls=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=2.0,
            reduction='mean',
            class_weight=[1.0] * num_classes + [0.1]),
        loss_mask=dict(
            type='CrossEntropyLoss', use_sigmoid=True, reduction='mean', loss_weight=5.0),
        loss_dice=dict(
            type='DiceLoss',
            use_sigmoid=True,
            activate=True,
            reduction='mean',
            naive_dice=True,
            eps=1.0,
            loss_weight=5.0)),
    panoptic_fusion_head=dict(
        type='MaskFormerFusionHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        loss_panoptic=None,
        init_cfg=None),
    train_cfg=dict(
        num_points=1024,
        oversample_ratio=3.0,
        importance_sample_ratio=0.75,
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='ClassificationCost', weight=2.0),
                dict(type='CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)
            ]),
        sampler=dict(type='MaskPseudoSampler')),
    test_cfg=dict(
        panoptic_on=True,
        semantic_on=False,
        instance_on=False,
        max_per_image=20,
        iou_thr=0.8,
        filter_low_score=True),
    init_cfg=None)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='PhotoMetricDistortion'),  # no flips: a mirrored digit is not a digit
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=4,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'query_embed': dict(decay_mult=0.0),
            'query_feat': dict(decay_mult=0.0),
            'level_embed': dict(decay_mult=0.0),
        },
        norm_decay_mult=0.0),
    clip_grad=dict(max_norm=1.0, norm_type=2))
default_hooks = dict(visualization=dict(_delete_=True, type='DetVisualizationHook'))
# the gate is unused in step A (single process: no DDP unused-parameter check); on GPUs:
find_unused_parameters = True
