# A small GMM-ViT trained from scratch on the built-in 32x32 digit crops (10 classes, chance 10 %):
# patch 8 (a 4x4 token grid), D 64, 4 layers, 4 heads of 16, MLP ratio 2, K = 5 Gaussians, no
# stochastic depth; AdamW lr 3e-3 (the toy schedule's 2e-3 learns slower: ViTs from scratch on
# 2,000 images need many epochs).
_base_ = ['../_base_/datasets/toy_cls.py', '../_base_/cls_runtime.py',
          '../_base_/schedules/toy_cls_30e.py']
model = dict(
    type='ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.GMMViT',
                  arch=dict(embed_dims=64, num_layers=4, num_heads=4, head_dims=16, mlp_ratio=2),
                  img_size=32, patch_size=8, mask_type='gmm', num_kernels=5, drop_path_rate=0.),
    neck=None,
    head=dict(type='LinearClsHead', num_classes=10, in_channels=64,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, ),
              init_cfg=dict(type='Xavier', layer='Linear', distribution='normal')))
optim_wrapper = dict(optimizer=dict(lr=3e-3))
