# ELM-ViT on CIFAR-100 (official `--is_SLM`), same recipe as GMM-ViT.
_base_ = ['./gmm-vit_1xb128-100e_cifar100.py']
model = dict(backbone=dict(mask_type='elm'))
