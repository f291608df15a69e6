# T-TAME explaining an ImageNet ViT-B/16 (official pl_scripts/vit_TAME.py with version 'TTAME';
# paper: torchvision vit_b_16 IMAGENET1K_V1, here mmpretrain's 224-px ViT-B/16). Feature maps: the
# first LayerNorm (ln1, official FX node 'encoder_layer_k.ln') of blocks 9, 10, 11, CLS-weighted
# 14x14 token maps; 'new' masking (the mask multiplies the normalised image); training pipeline
# resize 256 + random crop 224 + flip; everything else as the ResNet-50 config.
_base_ = ['./ttame_resnet50_1xb32-8e_in1k.py']

model = dict(
    classifier=dict(
        _delete_=True,
        type='ImageClassifier',
        data_preprocessor={{_base_.data_preprocessor}},
        backbone=dict(type='VisionTransformer', arch='base', img_size=224, patch_size=16,
                      out_type='cls_token'),
        neck=None,
        head=dict(type='VisionTransformerClsHead', num_classes=1000, in_channels=768)),
    classifier_checkpoint='https://download.openmmlab.com/mmclassification/v0/vit/'
    'vit-base-p16_pt-32xb128-mae_in1k_20220623-4c544545.pth',
    feature_layers=['backbone.layers.9.ln1', 'backbone.layers.10.ln1', 'backbone.layers.11.ln1'],
    version='TTAME',
    train_method='new')

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='RandomCrop', crop_size=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
