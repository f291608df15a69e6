# The paper's setting (Balasubramanian & Feizi, ICCV 2023): an ImageNet ResNet-50 evaluated with
# layer masking on images with part of them removed. Here: mmpretrain's ResNet-50 (its checkpoint
# loads unchanged into the layer-masked classifier), half of the 16x16 patches of the 224x224 crop
# removed per image. The official code uses torchvision's ResNet-50 weights (same architecture).
#   python tools/test.py configs/layer_masking/layer-masked-resnet50_8xb32_in1k_patch-removal.py \
#       https://download.openmmlab.com/mmclassification/v0/resnet/\
#       resnet50_8xb32_in1k_20210831-ea4938fc.pth  (one URL)
# LIME / missingness / mask-shape measures: tools/analysis_tools/layer_masking_eval.py.
_base_ = ['mmpretrain::resnet/resnet50_8xb32_in1k.py']
custom_imports = dict(imports=['mmmask.evaluation.explanation'], allow_failed_imports=False)
model = dict(type='mmmask.LayerMaskedImageClassifier', mask_mode='fill')
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='mmmask.RandomPatchRemoval', ratio=0.5, patch=16, seed=0, fill=None),
    dict(type='PackInputs', algorithm_keys=['layer_mask']),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
