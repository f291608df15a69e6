# The frozen toy ViT of the DVT toy dense probe. A toy ViT trained from scratch on the toy digit
# *classification* data stays at chance (see configs/hybrid_distill), so the toy "pre-training" is
# dense: a ViT-tiny (128-d, 4 blocks, 4 heads, patch 8, 64 px -> 8x8 tokens) + linear head trained
# end to end on the toy scenes for 1k iterations. Its checkpoint is the frozen ViT of
# dvt_vit-tiny-p8_linear_toy-seg-64x64.py (prefix 'backbone.').
#   python tools/train.py configs/dvt/dvt_vit-tiny-p8_1xb8-1k_toy-seg-64x64.py
_base_ = ['../_base_/seg_runtime.py', '../_base_/datasets/toy_seg.py',
          '../_base_/schedules/toy_2k.py']
data_preprocessor = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
                         seg_pad_val=255, size=(64, 64))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='mmpretrain.VisionTransformer',
                  arch=dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512),
                  img_size=64, patch_size=8, out_type='featmap', drop_path_rate=0.0),
    decode_head=dict(
        type='FCNHead', in_channels=128, in_index=0, channels=128, num_convs=0,
        concat_input=False, dropout_ratio=0.0, num_classes=12, align_corners=False,
        loss_decode=[dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                     dict(type='DiceLoss', loss_weight=1.0)]),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=0.05))
train_cfg = dict(max_iters=1000, val_interval=1000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='PolyLR', eta_min=1e-5, power=1.0, begin=100, end=1000, by_epoch=False),
]
default_hooks = dict(checkpoint=dict(interval=1000, max_keep_ckpts=1))
