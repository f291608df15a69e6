# LookupViT-B/16 with a 5x5 compressed grid (M = 25) on ImageNet-1k; the recipe of the 10x10
# config (ASSUMED, see README).
_base_ = ['./lookupvit-base-p16-10x10_8xb128_in1k.py']
model = dict(backbone=dict(compressed_grid=(5, 5)))
