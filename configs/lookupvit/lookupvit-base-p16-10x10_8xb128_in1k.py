# LookupViT-B/16 with a 10x10 compressed grid on ImageNet-1k at 224 px (N = 14x14 lookup tokens,
# M = 100 compressed tokens), trained from scratch for 300 epochs on 8 GPUs x 128.
# ASSUMED recipe: the paper's ImageNet-1k schedule and augmentations could not be read here
# (no official code); this uses the DeiT/timm recipe mmmask uses for ViT-family models from
# scratch (AdamW lr 1e-3 at batch 1024, wd 0.05, cosine, 5 warm-up epochs, RandAugment m9,
# random erasing 0.25, Mixup 0.8 / CutMix 1.0, label smoothing 0.1, weight EMA). See README.
_base_ = [
    '../_base_/datasets/imagenet_bs128_ppma_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_300e.py', '../_base_/cls_runtime.py'
]
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmmask.LookupViT',
        arch='base',
        img_size=224,
        patch_size=16,
        compressed_grid=(10, 10),
        out_type='both',
        drop_path_rate=0.1),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)],
        cal_acc=False),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'.pos_embed': dict(decay_mult=0.0)}))
