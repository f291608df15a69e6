# CrossViT-B (dims [384, 768]), ImageNet-1k, official recipe (see _base_/crossvit_8xb256-300e_in1k-240px.py).
_base_ = ['./_base_/crossvit_8xb256-300e_in1k-240px.py']
model = dict(backbone=dict(arch='base'), head=dict(in_channels=[384, 768]))
