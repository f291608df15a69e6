# ForAug / ForNet on ImageNet-1k: ViT-B/16, otherwise as the ViT-S config (paper, 3-Augment:
# ViT-B 77.6 -> 81.1 top-1). Stochastic depth 0.1 (DeiT III ViT-B) is our assumption.
_base_ = ['./vit-small-p16_foraug-3aug_8xb256-300e_in1k.py']

model = dict(
    backbone=dict(arch='base', drop_path_rate=0.1),
    head=dict(in_channels=768))
