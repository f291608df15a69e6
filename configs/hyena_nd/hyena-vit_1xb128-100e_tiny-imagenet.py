# Hyena-ViT on Tiny-ImageNet (200 classes, 64 px): the CIFAR-100 model with patch 8 (8x8 grid) and
# the small-dataset recipe's Tiny-ImageNet pipeline (mmpretrain's ImageNet AutoAugment policy);
# folder layout data/tiny-imagenet-200/{train,val}/<wnid>/*.JPEG (val sorted into class folders).
_base_ = ['./hyena-vit_1xb128-100e_cifar100.py']
mean, std = (0.4802, 0.4481, 0.3975), (0.2770, 0.2691, 0.2821)
data_preprocessor = dict(num_classes=200, mean=[m * 255 for m in mean],
                         std=[s * 255 for s in std], to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomCrop', crop_size=64, padding=4),
    dict(type='AutoAugment', policies='imagenet', hparams=dict(pad_val=128)),
    dict(type='RandomErasing', erase_prob=0.25, min_area_ratio=0.02, max_area_ratio=0.4,
         aspect_range=(0.3, 1 / 0.3), mode='const',
         fill_color=[round(m * (1 + s) * 255) for m, s in zip(mean, std)]),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(dataset=dict(dataset=dict(
    _delete_=True, type='CustomDataset', data_root='data/tiny-imagenet-200', data_prefix='train',
    pipeline=train_pipeline)))
val_dataloader = dict(dataset=dict(
    _delete_=True, type='CustomDataset', data_root='data/tiny-imagenet-200', data_prefix='val',
    pipeline=test_pipeline))
test_dataloader = val_dataloader
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(img_size=64, patch_size=8),
    head=dict(num_classes=200))
