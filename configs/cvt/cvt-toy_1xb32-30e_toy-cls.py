# A small CvT (CvT-13 topology at 32 px: conv embeddings 7/4, 3/2, 3/2 -> grids 8, 4, 2; dw-bn
# q/k/v projections with stride-2 keys/values; CLS token in the last stage) trained from scratch
# on the built-in 32x32 digit crops, with mmpretrain's LinearClsHead on the final-norm CLS token.
_base_ = ['../_base_/datasets/toy_cls.py', '../_base_/cls_runtime.py',
           '../_base_/schedules/toy_cls_30e.py']
toy_arch = dict(embed_dims=[32, 64, 96], depths=[1, 1, 2], num_heads=[1, 2, 3],
                mlp_ratios=[2, 2, 2], drop_path_rates=[0., 0., 0.])
model = dict(
    type='ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.CvT', arch=toy_arch, out_type='cls_token'),
    neck=None,
    head=dict(type='LinearClsHead', num_classes=10, in_channels=96,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
# lr 1e-3 (the toy schedule's 2e-3 is unstable for this model at batch 32)
optim_wrapper = dict(
    optimizer=dict(lr=1e-3),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'.cls_token': dict(decay_mult=0.0)}))
