# Baseline of layer-masked-resnet18-c32_toy-cls-64x64_patch-removal.py: the plain toy
# ResNet-18-c32 with the same removed patches (seeded per image) painted grey: the preprocessor
# mean colour (BGR order in the pipeline; 0 after normalisation, the paper's "greyout").
_base_ = ['../quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py']
custom_imports = dict(imports=['mmmask.evaluation.explanation'], allow_failed_imports=False)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64)),
    dict(type='mmmask.RandomPatchRemoval', ratio=0.5, patch=16, seed=0,
         fill=(103.53, 116.28, 123.675)),
    dict(type='PackInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
