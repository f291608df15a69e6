# The plain ViT baseline on CIFAR-100. Paper: 75.36 % top-1.
_base_ = ['./gmm-vit_1xb128-100e_cifar100.py']
model = dict(backbone=dict(mask_type=None))
