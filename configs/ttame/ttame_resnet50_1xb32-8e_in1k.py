# T-TAME explaining the ImageNet ResNet-50 of mmpretrain (paper: torchvision IMAGENET1K_V1 weights;
# official pl_scripts/resnet50_TAME.py): feature maps of layer2/3/4 (28/14/7 px -> 28x28 masks),
# 'raw_normalize' masking, published loss (1.5 CE + 2 area^0.3 + 0.01 TV), SGD-Nesterov momentum
# 0.9, weight decay 5e-4 (not on biases), one-cycle to lr 1e-3 per step, 8 epochs, batch 32, AMP.
# Official quirk kept: the frozen classifier runs in train mode while T-TAME trains
# (body_train_mode=True; its BN layers use batch statistics).
# The official training list (datalist/ILSVRC/ResNet50_train.txt) is not public in the repo
# snapshot we read; set train_dataloader.dataset.ann_file to such a subset list if you have it.
_base_ = ['../_base_/cls_runtime.py']

data_preprocessor = dict(
    num_classes=1000, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
classifier = dict(
    type='ImageClassifier',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='ResNet', depth=50, num_stages=4, out_indices=(3, ), style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, 5)))
model = dict(
    type='mmmask.TAMEClassifier',
    classifier=classifier,
    classifier_checkpoint='https://download.openmmlab.com/mmclassification/v0/resnet/'
    'resnet50_8xb32_in1k_20210831-ea4938fc.pth',
    feature_layers=['backbone.layer2', 'backbone.layer3', 'backbone.layer4'],
    version='TTAME',
    input_size=(224, 224),
    train_method='raw_normalize',
    masking='random',
    mask_size=(224, 224),
    body_train_mode=True,
    drop_fractions=[0.0, 0.5, 0.85])

# official LightnightDataset(normalize=False, dev=True): resize 256 + centre crop 224 for training
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='ImageNet', data_root='data/imagenet', split='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ImageNet', data_root='data/imagenet', split='val',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmmask.ExplanationADIC')
test_evaluator = val_evaluator

optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, nesterov=True, weight_decay=5e-4),
    paramwise_cfg=dict(bias_decay_mult=0.))
param_scheduler = [dict(type='OneCycleLR', eta_max=1e-3, by_epoch=True, begin=0, end=8,
                        convert_to_iter_based=True)]
train_cfg = dict(by_epoch=True, max_epochs=8, val_interval=1)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
auto_scale_lr = dict(base_batch_size=32)
