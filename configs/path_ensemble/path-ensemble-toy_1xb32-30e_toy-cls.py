# A small path-ensemble model with EnsembleScale and long->short self-distillation (into the partial
# ensembles after layers 0 and 1), trained from scratch on the built-in 32x32 digit crops: 32 px,
# patch 4 -> 8x8 grid, no CLS token, mean pooling, width 32, 3 layers, MLP ratio 2.
# A plain toy ViT does not learn these cluttered digits from scratch in a CPU budget (600
# iterations of a 64-wide 4-layer ViT: 11.8 % train top-1; with the GMM attention prior still 9.0 %
# val top-1 after 5 epochs), so the token mixers here are single-direction Hyena N-D operators (the
# toy Hyena-ViT of configs/hyena_nd); the path-ensemble view (and this module's accumulator,
# pruning, EnsembleScale and distillation) holds for any pre-norm residual transformer.
_base_ = ['../_base_/datasets/toy_cls.py', '../_base_/cls_runtime.py',
           '../_base_/schedules/toy_cls_30e.py']
model = dict(
    type='mmmask.PathEnsembleClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='mmmask.PathEnsembleViT',
        arch=dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64),
        img_size=32,
        patch_size=4,
        with_cls_token=False,
        out_type='avg_featmap',
        ensemble_scale='scalar',
        hyena_cfg=dict(order=2, direction='standard', filter_hidden=16)),
    neck=None,
    head=dict(type='LinearClsHead', num_classes=10, in_channels=32,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )),
    distill_layers=[0, 1],
    distill_weight=0.5,
    distill_temperature=2.0)
optim_wrapper = dict(paramwise_cfg=dict(
    norm_decay_mult=0.0, bias_decay_mult=0.0,
    custom_keys={'.pos_embed': dict(decay_mult=0.0), '.ensemble_scale': dict(decay_mult=0.0),
                 '.filter.': dict(decay_mult=0.0)}))
