# CvT-13 on ImageNet-1k at 384x384: experiments/imagenet/cvt/cvt-13-384x384.yaml on 8 GPUs. The
# official repo ships no separate fine-tuning recipe: this yaml is the 224 recipe (300 epochs from
# scratch, batch 2048, lr 2e-3) at 384 px, with the test images resized to 384x384 without a crop
# (TEST.CENTER_CROP False). No positional embedding, so a 224 checkpoint also runs at 384 as is
# (`load_from` a 224 checkpoint and shorten train_cfg.max_epochs to fine-tune instead).
_base_ = ['./cvt-13_8xb256_in1k.py']
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=384, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02,
         max_area_ratio=1 / 3, fill_color=[103.53, 116.28, 123.675],
         fill_std=[57.375, 57.12, 58.395]),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(384, 384), backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
