# ViT-B/16 (224 px) patch robustness, as deit-small-p16_in1k_patch-robustness.py. mmpretrain's
# ImageNet ViT-B/16 checkpoints are 384 px fine-tunes; for 224 px convert a 224 px ViT-B/16
# (e.g. timm's, with mmpretrain's tools/model_converters/vit2mmpretrain.py) or evaluate the
# 384 px weights with img_size=384 and a 384 crop (a 24x24 grid).
#   python tools/analysis_tools/patch_robustness.py \
#       configs/patch_robustness/vit-base-p16_in1k_patch-robustness.py CHECKPOINT
_base_ = ['mmpretrain::vision_transformer/vit-base-p16_64xb64_in1k.py']
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
