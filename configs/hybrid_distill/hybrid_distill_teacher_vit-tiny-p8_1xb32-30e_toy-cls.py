# The toy supervised ("CL/supervised") teacher of Hybrid Distill, the stand-in for the paper's
# DeiT-B: the toy ViT (128-d x 4 blocks, patch 8, 32 px) trained from scratch with labels on the
# built-in digits, 30 epochs at batch 32 (1,890 iterations, ~1.5 CPU minutes).
# What makes a toy ViT learn these digits from scratch (seed 0, top-1 after 30 epochs; chance 10):
#   - a fixed 2-D sin-cos position table (MAE-style MaskedViT) instead of a learned 0.02-std one,
#     Xavier-initialised Linear layers and a plain Xavier LinearClsHead: the mmpretrain DeiT recipe
#     (learned position table, TruncNormal 0.02 everywhere, VisionTransformerClsHead) stays at
#     8.4-11.8 % at any lr we tried;
#   - lr 1.5e-3 (41.0 %); 3e-3 gives 23.6 %; fine-tuning the toy MAE at 3e-3 collapses (9.2 %).
# The checkpoint loads into an mmpretrain VisionTransformer (same keys; prefix 'backbone.'), the
# cl_teacher of hybrid_distill_vit-tiny-p8_1xb64-30e_toy-pretrain.py:
#   python tools/train.py configs/hybrid_distill/hybrid_distill_teacher_vit-tiny-p8_1xb32-30e_toy-cls.py
_base_ = [
    '../_base_/datasets/toy_cls.py', '../_base_/schedules/toy_cls_30e.py',
    '../_base_/cls_runtime.py'
]
toy_vit = dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512)
model = dict(
    type='ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.MaskedViT', arch=toy_vit, img_size=32, patch_size=8,
                  fixed_pos_embed=True, out_type='cls_token', drop_path_rate=0.0,
                  init_cfg=dict(type='Xavier', layer='Linear', distribution='uniform')),
    neck=None,
    head=dict(type='LinearClsHead', num_classes=10, in_channels=128,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, ),
              init_cfg=dict(type='Xavier', layer='Linear', distribution='normal')))
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1.5e-3, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1, end=30,
         convert_to_iter_based=True)
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=30, max_keep_ckpts=1))
