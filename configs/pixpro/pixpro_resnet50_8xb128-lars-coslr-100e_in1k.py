# PixPro ResNet-50, 100 epochs (official tools/pixpro_base_r50_100ep.sh: the 400-epoch recipe
# with --epochs 100; warmup, LARS, augmentation and PixPro arguments unchanged).
_base_ = './pixpro_resnet50_8xb128-lars-coslr-400e_in1k.py'
epochs = 100
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=epochs - 5, eta_min=1e-6, by_epoch=True, begin=5,
         end=epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs)
