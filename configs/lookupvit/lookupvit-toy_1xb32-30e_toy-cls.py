# A small LookupViT trained from scratch on the built-in 32x32 digit crops: lookup tokens on the
# 4x4 grid of a convolutional tokenizer (3x3 conv, then three 3x3 stride-2 convs: a ViT patch
# tokenizer does not leave chance level within 30 epochs on these 2,000 images), compressed tokens
# on a 3x3 / 2x2 grid drawn per step (multi-resolution training), evaluated with the 2x2 grid (set
# model.backbone.test_compressed_grid to evaluate the same weights at another M).
_base_ = ['../_base_/datasets/toy_cls.py', '../_base_/cls_runtime.py',
          '../_base_/schedules/toy_cls_30e.py']
model = dict(
    type='ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='mmmask.LookupViT',
        arch=dict(embed_dims=64, num_layers=4, num_heads=4, mlp_ratio=4., lookup_mlp_ratio=1.),
        img_size=32,
        patch_size=8,
        tokenizer='conv',
        compressed_grid=[(3, 3), (2, 2)],
        test_compressed_grid=(2, 2),
        out_type='both'),
    neck=None,
    head=dict(type='LinearClsHead', num_classes=10, in_channels=64,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
# half the toy schedule's lr (2e-3 keeps this ViT at chance level for 10 epochs)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
