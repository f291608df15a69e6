# CrossViT-Ti (dims [96, 192]), ImageNet-1k, official recipe (see _base_/crossvit_8xb256-300e_in1k-240px.py).
_base_ = ['./_base_/crossvit_8xb256-300e_in1k-240px.py']
model = dict(backbone=dict(arch='tiny'), head=dict(in_channels=[96, 192]))
