# PPMA-Base on ImageNet-1k: the PPMA-T recipe with the base backbone (drop path 0.4 from the arch).
_base_ = './ppma-tiny_8xb128_in1k.py'
model = dict(backbone=dict(arch='base'))
