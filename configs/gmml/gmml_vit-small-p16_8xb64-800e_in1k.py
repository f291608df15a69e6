# GMML with the official default backbone, ViT-S/16 (vit_small: 384-d, 12 blocks, 6 heads);
# everything else as gmml_vit-base-p16_8xb64-800e_in1k.py.
_base_ = './gmml_vit-base-p16_8xb64-800e_in1k.py'
model = dict(
    backbone=dict(arch='deit-small'),
    head=dict(in_dim=384))
