# GMM-Swin on CIFAR-10 (official `--model swin --is_GMM`, same recipe as GMM-ViT).
# Paper: 95.39 % (Swin 95.26 %).
_base_ = ['./_base_/cifar10_official-aug.py', './_base_/schedule_adamw_100e.py',
          './_base_/gmm-swin.py']
