# Linear probing of a pretrained ViT-B/16 on ImageNet-1k: mmpretrain's MAE benchmark recipe
# (frozen backbone, cls token + BN, LARS lr 6.4 at batch 16384, 90 epochs).
# Method configs set `model.backbone.init_cfg.checkpoint` to their pretraining checkpoint.
_base_ = ['mmpretrain::mae/benchmarks/vit-base-p16_8xb2048-linear-coslr-90e_in1k.py']
custom_imports = dict(imports=['mmmask'], allow_failed_imports=False)
