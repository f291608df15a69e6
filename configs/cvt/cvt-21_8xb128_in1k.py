# CvT-21 on ImageNet-1k at 224x224, 300 epochs from scratch: experiments/imagenet/cvt/
# cvt-21-224x224.yaml on 8 GPUs. Differences from CvT-13: depths [1, 4, 16]; batch 128/GPU x 8 =
# 1024, lr 0.000125 x 8 = 1e-3, weight decay 0.1, repeated-augmentation sampler.
# Note: that yaml also sets TIMM_AUG.USE_LOADER false, which (with USE_TRANSFORM unset) drops
# RandAugment and random erasing upstream; we keep the paper's recipe (same augmentation as
# CvT-13) — set `train_dataloader.dataset.pipeline` to a plain crop+flip to follow the yaml.
_base_ = ['./cvt-13_8xb256_in1k.py']
model = dict(backbone=dict(arch='cvt-21'))
train_dataloader = dict(batch_size=128, sampler=dict(type='RepeatAugSampler', _delete_=True))
optim_wrapper = dict(optimizer=dict(lr=1.25e-4 * 8, weight_decay=0.1))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / 1e-3, by_epoch=True, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5, end=300,
         convert_to_iter_based=True)
]
auto_scale_lr = dict(base_batch_size=1024)
