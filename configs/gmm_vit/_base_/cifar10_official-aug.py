# CIFAR-10 with the official GMM training augmentation (main.py): RandomHorizontalFlip,
# RandomCrop(32, padding 4), CIFAR-10 AutoAugment, normalisation, RandomErasing(p 0.25, area
# 0.02..0.4, aspect 0.3..1/0.3, constant fill). The official erasing runs on the *normalised*
# tensor and fills it with the dataset mean, i.e. with pixel value mean·(1 + std) (×255) — the
# fill colour below. `--ra 3` of main.py is the epoch-length factor of its RASampler (repetitions
# stay 1): an epoch is 3 passes over the data, here RepeatDataset(times=3). Batch 128, drop_last.
_base_ = ['./cifar_autoaugment.py']
dataset_type = 'CIFAR10'
mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
data_preprocessor = dict(
    num_classes=10,
    mean=[m * 255 for m in mean],
    std=[s * 255 for s in std],
    to_rgb=False)
train_pipeline = [
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='AutoAugment', policies={{_base_.cifar10_policies}}, hparams=dict(pad_val=128)),
    dict(type='RandomErasing', erase_prob=0.25, min_area_ratio=0.02, max_area_ratio=0.4,
         aspect_range=(0.3, 1 / 0.3), mode='const',
         fill_color=[round(m * (1 + s) * 255) for m, s in zip(mean, std)]),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=128,
    num_workers=4,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='RepeatDataset',
        times=3,
        dataset=dict(type=dataset_type, data_root='data/cifar10', split='train',
                     pipeline=train_pipeline)))
val_dataloader = dict(
    batch_size=128,
    num_workers=4,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root='data/cifar10', split='test',
                 pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
