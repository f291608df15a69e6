# Plain MoCo v2 (mmpretrain `MoCo`) on the built-in digits: the A/B baseline and step-time
# reference of the Hallucinator toy config (same backbone, neck, queue, views, optimiser, schedule).
# CIFAR ResNet-18 (stem/base 16, 128-d C5), MoCo v2 neck 128 -> 128 -> 128, queue 1024 (a multiple
# of the 2 x 64 keys the Hallucinator variant enqueues), m = 0.99, T = 0.2, SGD + cosine, 6 epochs.
# Views: the shared toy views of toy_contrastive.py (hue jittered fully, grayscale p 0.5, crops
# >= half of the image: the digits' random colour is otherwise an instance-discrimination shortcut).
#   python tools/train.py configs/hallucinator/mocov2_resnet18-c16_1xb64-6e_toy-pretrain.py
_base_ = [
    '../_base_/datasets/toy_contrastive.py', '../_base_/schedules/toy_pretrain_30e.py',
    '../_base_/pretrain_runtime.py'
]
model = dict(
    type='MoCo',
    data_preprocessor={{_base_.data_preprocessor}},
    queue_len=1024,
    feat_dim=128,
    momentum=0.01,
    backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=16, base_channels=16,
                  out_indices=(3, ), norm_cfg=dict(type='BN')),
    neck=dict(type='MoCoV2Neck', in_channels=128, hid_channels=128, out_channels=128,
              with_avg_pool=True),
    head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'), temperature=0.2))
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4),
    _delete_=True)
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=6, eta_min=1e-4, by_epoch=True, begin=0, end=6,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=6)
