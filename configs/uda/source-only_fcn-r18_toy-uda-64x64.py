# Source-only baseline of the toy UDA pair (configs/_base_/datasets/toy_uda.py, restated here
# because the quickstart already inherits toy_seg.py): the quickstart FCN on a dilated ResNet-18-c32
# trained on the labelled source scenes only, evaluated on the target validation scenes. The head
# uses plain cross-entropy (as DAFormer), so configs/uda/dacs_fcn-r18_toy-uda-64x64.py differs from
# this one only by the adaptation.
_base_ = ['../quickstart/fcn_r18-c32-d8_1xb8-2k_toy-seg-64x64.py']
custom_imports = dict(imports=['mmmask.datasets', 'mmmask.models'], allow_failed_imports=False)
data_root = 'data/toy/uda/'
source_train = dict(
    type='mmmask.ToyData',
    world='uda',
    reader='mmseg.BaseSegDataset',
    data_root=data_root,
    data_prefix=dict(
        img_path='source/images/training', seg_map_path='source/annotations/training'),
    reduce_zero_label=True,
    pipeline={{_base_.train_pipeline}})
target_train = dict(
    type='mmmask.ToyData',
    world='uda',
    reader='mmseg.BaseSegDataset',
    data_root=data_root,
    data_prefix=dict(
        img_path='target/images/training', seg_map_path='target/annotations/training'),
    reduce_zero_label=True,
    pipeline={{_base_.train_pipeline}})
train_dataloader = dict(dataset=dict(_delete_=True, **source_train))
val_dataloader = dict(
    dataset=dict(
        world='uda',
        data_root=data_root,
        data_prefix=dict(
            img_path='target/images/validation',
            seg_map_path='target/annotations/validation')))
test_dataloader = val_dataloader
# As DAFormer's students start from ImageNet weights, the toy student's dilated ResNet-18 (mmseg
# ResNet, 32 base channels, output stride 8) starts from the toy "ImageNet" classifier (digit
# crops in the source style; train it first, ~2 min):
#   python tools/train.py configs/quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        stem_channels=32,
        base_channels=32,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        contract_dilation=True,
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        init_cfg=dict(
            type='Pretrained',
            prefix='backbone.',
            checkpoint='work_dirs/resnet18-c32_1xb32-10e_toy-cls-64x64/epoch_10.pth')),
    decode_head=dict(
        loss_decode=dict(
            _delete_=True, type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
