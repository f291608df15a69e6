# CIFAR-100 with the official GMM training augmentation (see cifar10_official-aug.py; the official
# code uses the CIFAR-10 AutoAugment policy for both CIFAR sets).
_base_ = ['./cifar10_official-aug.py']
dataset_type = 'CIFAR100'
mean, std = (0.5070, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
data_preprocessor = dict(num_classes=100, mean=[m * 255 for m in mean],
                         std=[s * 255 for s in std])
train_pipeline = [
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='AutoAugment', policies={{_base_.cifar10_policies}}, hparams=dict(pad_val=128)),
    dict(type='RandomErasing', erase_prob=0.25, min_area_ratio=0.02, max_area_ratio=0.4,
         aspect_range=(0.3, 1 / 0.3), mode='const',
         fill_color=[round(m * (1 + s) * 255) for m, s in zip(mean, std)]),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(dataset=dict(type=dataset_type, data_root='data/cifar100',
                                                  pipeline=train_pipeline)))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root='data/cifar100'))
test_dataloader = val_dataloader
