# A small S2AFormer classifier trained from scratch on the built-in 32x32 digit crops (stage
# resolutions 8x8 / 4x4 / 2x2 / 1x1).
_base_ = ['../_base_/datasets/toy_cls.py', '../_base_/cls_runtime.py',
          '../_base_/schedules/toy_cls_30e.py']
toy_arch = dict(
    embed_dims=[32, 64, 96, 128],
    depths=[1, 1, 2, 1],
    num_heads=[1, 2, 2, 4],
    qk_dims=[8, 16, 24, 32],
    sr_ratios=[4, 2, 1, 1],
    mlp_ratios=[2, 2, 2, 2])
model = dict(
    type='ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.S2AFormer', arch=toy_arch, out_indices=(3, ),
                  drop_path_rate=0.0),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=128,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
