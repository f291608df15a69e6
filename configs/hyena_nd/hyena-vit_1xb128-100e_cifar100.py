# Hyena-ViT on CIFAR-100 (Zimerman & Wolf, AISTATS 2024, small-data regime). Assumed setting (the
# paper's supplementary code was not available): the 9-layer, 192-wide ViT of the small-dataset
# ViT literature it compares with (32 px, patch 4 -> 8x8 grid, MLP ratio 2, stochastic depth 0.1,
# no CLS token, mean pooling -> LayerNorm -> Linear) with every attention replaced by a 4-direction
# order-2 Hyena N-D mixer (product filter, filter FFN width 64), and that literature's recipe
# (shared with configs/gmm_vit: AdamW lr 1e-3 wd 0.05, 100 epochs of 3 passes, 10 warm-up epochs,
# cosine, batch 128, AutoAugment, random erasing 0.25, CutMix/MixUp on half the batches, label
# smoothing 0.1). The implicit filters get no weight decay, as in the reference operator.
_base_ = ['../gmm_vit/_base_/cifar100_official-aug.py',
          '../gmm_vit/_base_/schedule_adamw_100e.py']
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmmask.HyenaViT',
        arch='vit-small-data',
        img_size=32,
        patch_size=4,
        qkv_bias=False,
        drop_path_rate=0.1,
        final_norm=False,
        out_type='avg_featmap',
        hyena_cfg=dict(order=2, direction='4dir', filter_type='product', filter_hidden=64)),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=192,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='Xavier', layer='Linear', distribution='normal')),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=1.0), dict(type='CutMix', alpha=1.0)],
                   probs=[0.25, 0.25]))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'.filter.': dict(decay_mult=0.0)}))
