# A/B reference and step-time baseline for PixPro's toy config: mmpretrain's BYOL (global
# pooled projections + predictor, cosine EMA target) on the same 3-stage CIFAR ResNet-18
# (stem/base 16), the same two-view digits pipeline (without coordinates), batch, schedule and
# optimiser as pixpro_resnet18-c16_1xb32-6e_toy-pretrain.py.
#   python tools/train.py configs/pixpro/byol_resnet18-c16_1xb32-4e_toy-pretrain.py
_base_ = [
    '../_base_/datasets/toy_contrastive.py', '../_base_/schedules/toy_pretrain_30e.py',
    '../_base_/pretrain_runtime.py'
]
train_dataloader = dict(batch_size=32)
model = dict(
    type='BYOL',
    base_momentum=0.01,
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=16, base_channels=16,
                  num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1), out_indices=(2, ),
                  norm_cfg=dict(type='BN')),
    neck=dict(type='NonLinearNeck', in_channels=64, hid_channels=256, out_channels=64,
              num_layers=2, with_bias=True, with_last_bn=False, with_avg_pool=True),
    head=dict(
        type='LatentPredictHead',
        predictor=dict(type='NonLinearNeck', in_channels=64, hid_channels=256,
                       out_channels=64, num_layers=2, with_bias=True, with_last_bn=False,
                       with_avg_pool=False),
        loss=dict(type='CosineSimilarityLoss')))
optim_wrapper = dict(optimizer=dict(lr=3e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=3, eta_min=1e-5, by_epoch=True, begin=1, end=4,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=4)
