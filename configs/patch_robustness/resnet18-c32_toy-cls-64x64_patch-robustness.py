# Toy: the quickstart ResNet-18-c32 (configs/quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py,
# 64x64 digits) with one 16x16 patch of its 4x4 grid perturbed.
#   python tools/train.py configs/quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py
#   python tools/test.py configs/patch_robustness/resnet18-c32_toy-cls-64x64_patch-robustness.py \
#       work_dirs/resnet18-c32_1xb32-10e_toy-cls-64x64/epoch_10.pth
#   python tools/analysis_tools/patch_robustness.py \
#       configs/patch_robustness/resnet18-c32_toy-cls-64x64_patch-robustness.py \
#       work_dirs/resnet18-c32_1xb32-10e_toy-cls-64x64/epoch_10.pth
_base_ = ['../quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py']
custom_imports = dict(imports=['mmmask.evaluation.robustness'], allow_failed_imports=False)
patch_robustness = dict(
    num_images=64, patch_size=16, positions='all', severity=5,
    corruptions=['gaussian_noise', 'defocus_blur', 'contrast', 'pixelate'],
    kinds=['natural', 'adversarial', 'random'], eps=255.0, steps=20, step_size=16.0,
    temperature=[1.0])
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64)),
    dict(type='mmmask.PatchCorruption', corruption='gaussian_noise', severity=5, patch_size=16,
         position='random', seed=0),
    dict(type='PackInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
