# GMM-ViT on CIFAR-100 (official recipe, see the CIFAR-10 config). Paper: 77.81 % (ViT 75.36 %).
_base_ = ['./_base_/cifar100_official-aug.py', './_base_/schedule_adamw_100e.py',
          './_base_/gmm-vit.py']
model = dict(head=dict(num_classes=100))
