# A small PPMA (same blocks, both attention operators) with UPerNet, trained from scratch on the
# built-in toy scenes (64x64, 12 classes) on the CPU in minutes. Token grids: 16, 8, 4, 2.
_base_ = [
    '../_base_/models/upernet_ppma.py', '../_base_/datasets/toy_seg.py',
    '../_base_/seg_runtime.py', '../_base_/schedules/toy_2k.py'
]
norm_cfg = dict(type='BN', requires_grad=True)
toy_arch = dict(
    embed_dims=[32, 64, 128, 256],
    depths=[1, 1, 2, 1],
    num_heads=[2, 2, 4, 8],
    mlp_ratios=[2, 2, 2, 2],
    modes=['chunk', 'chunk', 'whole', 'whole'],
    layer_scales=[None, None, None, None])
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(_delete_=True, type='mmmask.PPMA', arch=toy_arch, out_indices=(0, 1, 2, 3),
                  drop_path_rate=0.0),
    decode_head=dict(
        in_channels=[32, 64, 128, 256],
        channels=64,
        pool_scales=(1, 2),
        dropout_ratio=0.0,
        num_classes=12,
        norm_cfg=norm_cfg,
        loss_decode=[
            dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            dict(type='DiceLoss', loss_weight=1.0)
        ]),
    auxiliary_head=dict(
        in_channels=128, channels=64, dropout_ratio=0.0, num_classes=12, norm_cfg=norm_cfg))
