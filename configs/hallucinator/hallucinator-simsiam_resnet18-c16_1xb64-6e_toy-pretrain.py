# Hallucinator + SimSiam on the built-in digits: the toy MoCo v2 setting (backbone, optimiser,
# schedule) with mmmask.HallucinatorSimSiam: 3-layer projector 128-128-128 (last BN without
# affine), predictor 128 -> 32 -> 128 (on the cosine schedule: the toy run is short), generator
# 256 -> 256 -> 256 -> 128 on the predictor outputs, two λ draws per step (trained here; see the
# CIFAR-10 config for the official frozen-generator quirk).
#   python tools/train.py configs/hallucinator/hallucinator-simsiam_resnet18-c16_1xb64-6e_toy-pretrain.py
_base_ = ['./mocov2_resnet18-c16_1xb64-6e_toy-pretrain.py']
model = dict(
    _delete_=True,
    type='mmmask.HallucinatorSimSiam',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=16, base_channels=16,
                  out_indices=(3, ), norm_cfg=dict(type='BN'), zero_init_residual=True),
    neck=dict(type='NonLinearNeck', in_channels=128, hid_channels=128, out_channels=128,
              num_layers=3, with_last_bn_affine=False, with_avg_pool=True,
              norm_cfg=dict(type='BN1d')),
    head=dict(type='LatentPredictHead', loss=dict(type='CosineSimilarityLoss'),
              predictor=dict(type='NonLinearNeck', in_channels=128, hid_channels=32,
                             out_channels=128, with_avg_pool=False, with_last_bn=False,
                             with_last_bias=True, norm_cfg=dict(type='BN1d'))),
    hallucinator=dict(type='mmmask.HallucinatorGenerator', feat_dim=128, max_ratio=0.1))
