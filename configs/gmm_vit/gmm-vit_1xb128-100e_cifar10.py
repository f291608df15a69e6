# GMM-ViT on CIFAR-10 as published (Li et al., Pattern Recognition 2024; official
# `python main.py --model vit --is_GMM`, all other flags at their defaults).
# Paper: 95.06 % top-1 (ViT 93.65 %).
_base_ = ['./_base_/cifar10_official-aug.py', './_base_/schedule_adamw_100e.py',
          './_base_/gmm-vit.py']
