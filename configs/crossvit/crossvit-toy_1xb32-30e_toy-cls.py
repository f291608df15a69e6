# A small two-branch CrossViT trained from scratch on the built-in 32x32 digit crops: branch S at
# 32 px with 4-px patches (64 tokens), branch L at 28 px with 7-px patches (16 tokens; the input
# is bicubically resized 32 -> 28 as in the official model), 2 multi-scale blocks [1, 2, 0].
# Note: like a plain toy ViT, it stays near chance for the first ~12 epochs (README).
_base_ = ['../_base_/datasets/toy_cls.py', '../_base_/cls_runtime.py',
           '../_base_/schedules/toy_cls_30e.py']
model = dict(
    type='ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.CrossViT',
                  arch=dict(embed_dims=[48, 96], depths=[[1, 2, 0], [1, 2, 0]],
                            num_heads=[2, 4], mlp_ratios=[2, 2, 1]),
                  img_size=(32, 28), patch_size=(4, 7), drop_path_rate=0.0),
    neck=None,
    head=dict(type='mmmask.MultiBranchLinearClsHead', num_classes=10, in_channels=[48, 96],
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
