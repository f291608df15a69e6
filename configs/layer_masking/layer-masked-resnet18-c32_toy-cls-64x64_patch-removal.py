# Layer masking (Balasubramanian & Feizi, ICCV 2023) on the toy "ImageNet" ResNet-18-c32
# (configs/quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py): the same classifier and weights,
# wrapped by mmmask.LayerMaskedImageClassifier, evaluated with half of the 16x16 patches of every
# validation image removed (the removed patches reach the model only as a mask).
#   python tools/test.py \
#       configs/layer_masking/layer-masked-resnet18-c32_toy-cls-64x64_patch-removal.py \
#       work_dirs/resnet18-c32_1xb32-10e_toy-cls-64x64/epoch_10.pth
# Compare with the grey / black fill configs next to it (same removed patches: seeded per image).
_base_ = ['../quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py']
custom_imports = dict(imports=['mmmask.evaluation.explanation'], allow_failed_imports=False)
model = dict(type='mmmask.LayerMaskedImageClassifier', mask_mode='fill')
removal = dict(type='mmmask.RandomPatchRemoval', ratio=0.5, patch=16, seed=0)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64)),
    dict(removal, fill=None),
    dict(type='PackInputs', algorithm_keys=['layer_mask']),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
