# The plain ViT baseline of the paper (official `--model vit` without a mask): CLS token,
# position embedding for 65 tokens, CLS -> LayerNorm -> Linear. Paper: 93.65 % top-1.
_base_ = ['./gmm-vit_1xb128-100e_cifar10.py']
model = dict(backbone=dict(mask_type=None))
