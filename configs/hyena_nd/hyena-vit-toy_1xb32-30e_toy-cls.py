# A small Hyena-ViT (every attention replaced by an order-2 Hyena N-D mixer; no CLS token, global
# average pooling) trained from scratch on the built-in 32x32 digit crops. Patch 4 -> an 8x8 grid;
# width 32, 3 layers, MLP ratio 2 (the small-data ViT shape, scaled down). The toy uses the
# single-direction ('standard') operator: 4x cheaper on CPU than the paper's default '4dir' (used by
# the CIFAR/Tiny-ImageNet configs) and quicker to take off at this scale (600 iterations at lr 2e-3:
# 55 % train top-1 vs 42 % for '4dir', 22 s vs 90 s on a loaded CPU); '4dir' reaches 23.2 % val
# top-1 after 8 epochs of this schedule (77 s).
_base_ = ['../_base_/datasets/toy_cls.py', '../_base_/cls_runtime.py',
           '../_base_/schedules/toy_cls_30e.py']
model = dict(
    type='ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='mmmask.HyenaViT',
        arch=dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64),
        img_size=32,
        patch_size=4,
        out_type='avg_featmap',
        hyena_cfg=dict(order=2, direction='standard', filter_type='product', filter_hidden=16)),
    neck=None,
    head=dict(type='LinearClsHead', num_classes=10, in_channels=32,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
# the reference operator trains its implicit filters without weight decay
optim_wrapper = dict(paramwise_cfg=dict(
    norm_decay_mult=0.0, bias_decay_mult=0.0,
    custom_keys={'.filter.': dict(decay_mult=0.0), '.pos_embed': dict(decay_mult=0.0)}))
