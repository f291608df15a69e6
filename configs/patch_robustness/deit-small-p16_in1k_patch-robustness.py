# Gu, Tresp & Qin, "Are Vision Transformers Robust to Patch Perturbations?" (ECCV 2022): DeiT-S/16
# on ImageNet-1k val (224 px, 14x14 grid of 16x16 patches), one grid-aligned patch perturbed.
#   natural patch corruption, tools/test.py (accuracy with one random patch of every image
#   corrupted; another corruption: edit the PatchCorruption step of test_pipeline below):
#     python tools/test.py configs/patch_robustness/deit-small-p16_in1k_patch-robustness.py \
#         https://download.openmmlab.com/mmclassification/v0/deit/\
#         deit-small_pt-4xb256_in1k_20220218-9425b9bb.pth  (one URL)
#   natural vs adversarial vs random patch, fooling rates, attention on the attacked patch:
#     python tools/analysis_tools/patch_robustness.py \
#         configs/patch_robustness/deit-small-p16_in1k_patch-robustness.py CHECKPOINT
# The attack/corruption settings below are our reading of the paper (no official code; see
# README.md "Assumptions").
_base_ = ['mmpretrain::deit/deit-small_4xb256_in1k.py']
custom_imports = dict(imports=['mmmask.models', 'mmmask.evaluation.robustness'],
                      allow_failed_imports=False)
patch_robustness = dict(
    num_images=1000, patch_size=16, positions='random', severity=5,
    corruptions=['gaussian_noise', 'shot_noise', 'impulse_noise', 'defocus_blur', 'motion_blur',
                 'zoom_blur', 'brightness', 'contrast', 'pixelate', 'jpeg_compression'],
    kinds=['natural', 'adversarial', 'random'], eps=255.0, steps=100, step_size=8.0,
    temperature=[1.0])
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='mmmask.PatchCorruption', corruption='gaussian_noise', severity=5, patch_size=16,
         position='random', seed=0),
    dict(type='PackInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
