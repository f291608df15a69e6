# Alias of the flagship setting: UPerNet + PPMA-T, ADE20K 512x512, 160k iterations.
_base_ = './upernet_ppma-tiny_8xb2-160k_ade20k-512x512.py'
