# A small PPMA classifier (official head) trained from scratch on the built-in 32x32 digit crops.
_base_ = ['../_base_/datasets/toy_cls.py', '../_base_/cls_runtime.py',
           '../_base_/schedules/toy_cls_30e.py']
toy_arch = dict(
    embed_dims=[32, 64, 128, 128],
    depths=[1, 1, 2, 1],
    num_heads=[2, 2, 4, 4],
    mlp_ratios=[2, 2, 2, 2],
    modes=['chunk', 'whole', 'whole', 'whole'],
    layer_scales=[None, None, None, None])
model = dict(
    type='ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.PPMA', arch=toy_arch, out_indices=(3, ), out_norm=False,
                  drop_path_rate=0.0),
    neck=None,
    head=dict(type='mmmask.PPMAClsHead', num_classes=10, in_channels=128, projection=256,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
