# Hallucinator + SimCLR on the built-in digits: the toy MoCo v2 setting (backbone, optimiser,
# schedule) with mmmask.HallucinatorSimCLR: separate forwards of the two views, projection
# 128 -> 128 -> 128, f1 = [z1; G(z1, z2, λ)], f2 = [z2; z2], NT-Xent (T = 0.2) over 4 x 64 rows.
#   python tools/train.py configs/hallucinator/hallucinator-simclr_resnet18-c16_1xb64-6e_toy-pretrain.py
_base_ = ['./mocov2_resnet18-c16_1xb64-6e_toy-pretrain.py']
model = dict(
    _delete_=True,
    type='mmmask.HallucinatorSimCLR',
    data_preprocessor={{_base_.data_preprocessor}},
    feat_dim=128,
    backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=16, base_channels=16,
                  out_indices=(3, ), norm_cfg=dict(type='BN')),
    neck=dict(type='MoCoV2Neck', in_channels=128, hid_channels=128, out_channels=128,
              with_avg_pool=True),
    head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'), temperature=0.2),
    hallucinator=dict(type='mmmask.HallucinatorGenerator', feat_dim=128, max_ratio=0.1))
