# PEM on the built-in toy scenes (64x64, 10 digits + sky + ground), trained from scratch on CPU:
# a 32-channel ResNet-18, a 32-channel PEM pixel decoder and 4 PEM decoder layers with 16 queries.
_base_ = [
    '../_base_/seg_runtime.py', '../_base_/datasets/toy_seg.py',
    '../_base_/schedules/toy_2k.py', '../_base_/models/pem_r50.py'
]
num_classes = 12
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=(64, 64), size_divisor=None),
    backbone=dict(
        type='ResNet', depth=18, stem_channels=32, base_channels=32, norm_cfg=norm_cfg,
        norm_eval=False, init_cfg=None),
    decode_head=dict(
        in_channels=[32, 64, 128, 256],
        num_classes=num_classes,
        feat_channels=64,
        out_channels=64,
        num_queries=16,
        pixel_decoder=dict(feat_channels=32, norm_cfg=norm_cfg),
        transformer_decoder=dict(num_layers=4, num_heads=4, feedforward_channels=128,
                                 norm_cfg=norm_cfg),
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1]),
        train_cfg=dict(num_points=256)))
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=0.01, norm_type=2))
