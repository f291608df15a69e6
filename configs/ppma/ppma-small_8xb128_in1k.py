# PPMA-Small on ImageNet-1k: the PPMA-T recipe with the small backbone (drop path 0.15 from the arch).
_base_ = './ppma-tiny_8xb128_in1k.py'
model = dict(backbone=dict(arch='small'))
