# Source-only baseline of the toy UDA pair (configs/_base_/datasets/toy_uda.py): the quickstart's
# FCN on a dilated ResNet-18-c32, trained on the labelled source scenes only, evaluated on the
# target validation scenes. The head uses plain cross-entropy (as DAFormer), so
# configs/uda/dacs_fcn-r18_toy-uda-64x64.py differs from this one only by the adaptation.
_base_ = [
    '../_base_/seg_runtime.py', '../_base_/datasets/toy_uda.py',
    '../_base_/schedules/toy_2k.py', '../_base_/models/fcn_r18-c32-d8_toy.py'
]
custom_imports = dict(imports=['mmmask.datasets', 'mmmask.models'], allow_failed_imports=False)
# As DAFormer's students start from ImageNet weights, the toy student's dilated ResNet-18 (mmseg
# ResNet, 32 base channels, output stride 8) starts from the toy "ImageNet" classifier (digit
# crops in the source style; train it first, ~2 min):
#   python tools/train.py configs/quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py
# mmseg's ResNet (single-conv stem) instead of the quickstart's ResNetV1c, to match the classifier
model = dict(
    backbone=dict(
        type='ResNet',
        init_cfg=dict(
            type='Pretrained',
            prefix='backbone.',
            checkpoint='work_dirs/resnet18-c32_1xb32-10e_toy-cls-64x64/epoch_10.pth')),
    decode_head=dict(
        loss_decode=dict(
            _delete_=True, type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
