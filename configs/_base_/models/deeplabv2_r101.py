# DeepLabV2 as in DAFormer/DACS: ResNet-101-V1c (ImageNet, open-mmlab weights), output stride 8
# (strides 1, 2, 1, 1; dilations 1, 1, 2, 4; contracted first dilated block), BN in train mode,
# and DeepLabV2's classifier (mmmask.DLV2Head): four 3x3 atrous convs (rates 6, 12, 18, 24) from
# the 2048-channel stage-4 features straight to the 19 class logits, summed; N(0, 0.01) weights.
# Whole-image inference. deeplabv2red_r101.py is the (6, 12) variant of earlier UDA code.
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(
        type='ResNetV1c',
        depth=101,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True),
    decode_head=dict(
        type='mmmask.DLV2Head',
        in_channels=2048,
        in_index=3,
        dilations=(6, 12, 18, 24),
        num_classes=19,
        align_corners=False,
        init_cfg=dict(type='Normal', std=0.01, override=dict(name='aspp_modules')),
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
