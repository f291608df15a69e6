# CrossViT-S (dims [192, 384]), ImageNet-1k, official recipe (see _base_/crossvit_8xb256-300e_in1k-240px.py).
_base_ = ['./_base_/crossvit_8xb256-300e_in1k-240px.py']
model = dict(backbone=dict(arch='small'), head=dict(in_channels=[192, 384]))
