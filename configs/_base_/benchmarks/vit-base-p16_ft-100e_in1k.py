# Fine-tuning a pretrained ViT-B/16 on ImageNet-1k: mmpretrain's MAE benchmark recipe (100 epochs,
# AdamW lr 2e-3 at batch 1024, layer decay 0.65, RandAugment, Mixup/CutMix, label smoothing).
# Method configs set `model.backbone.init_cfg.checkpoint` to their pretraining checkpoint.
_base_ = ['mmpretrain::mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py']
custom_imports = dict(imports=['mmmask'], allow_failed_imports=False)
