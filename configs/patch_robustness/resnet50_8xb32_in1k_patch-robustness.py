# The CNN side of the comparison: ResNet-50 (ImageNet-1k, 224 px) with one 16x16 patch (aligned
# with the 14x14 grid a ViT-/16 sees) perturbed, as the ViT configs next to it.
#   python tools/test.py configs/patch_robustness/resnet50_8xb32_in1k_patch-robustness.py \
#       https://download.openmmlab.com/mmclassification/v0/resnet/\
#       resnet50_8xb32_in1k_20210831-ea4938fc.pth  (one URL)
#   python tools/analysis_tools/patch_robustness.py \
#       configs/patch_robustness/resnet50_8xb32_in1k_patch-robustness.py CHECKPOINT
_base_ = ['mmpretrain::resnet/resnet50_8xb32_in1k.py']
custom_imports = dict(imports=['mmmask.evaluation.robustness'], allow_failed_imports=False)
patch_robustness = dict(
    num_images=1000, patch_size=16, positions='random', severity=5,
    corruptions=['gaussian_noise', 'shot_noise', 'impulse_noise', 'defocus_blur', 'motion_blur',
                 'zoom_blur', 'brightness', 'contrast', 'pixelate', 'jpeg_compression'],
    kinds=['natural', 'adversarial', 'random'], eps=255.0, steps=100, step_size=8.0,
    temperature=[1.0])
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='mmmask.PatchCorruption', corruption='gaussian_noise', severity=5, patch_size=16,
         position='random', seed=0),
    dict(type='PackInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
