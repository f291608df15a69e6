# GMM-Swin on CIFAR-100 (see the CIFAR-10 config). Paper: 78.26 % (Swin 77.88 %).
_base_ = ['./_base_/cifar100_official-aug.py', './_base_/schedule_adamw_100e.py',
          './_base_/gmm-swin.py']
model = dict(head=dict(num_classes=100))
