# Baseline of dvt_vit-tiny-p8_linear_toy-seg-64x64.py: the same frozen toy ViT and linear head,
# raw (not denoised) features.
#   python tools/train.py configs/dvt/dvt_vit-tiny-p8-raw_linear_toy-seg-64x64.py
_base_ = ['./dvt_vit-tiny-p8_linear_toy-seg-64x64.py']
model = dict(backbone=dict(denoiser=None, denoiser_checkpoint=None))
