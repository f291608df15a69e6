# S2AFormer-Base (ASSUMED preset) on ImageNet-1k; recipe of the tiny config (ASSUMED, see README).
_base_ = ['./s2aformer-tiny_8xb128_in1k.py']
model = dict(backbone=dict(arch='base'), head=dict(in_channels=512))
