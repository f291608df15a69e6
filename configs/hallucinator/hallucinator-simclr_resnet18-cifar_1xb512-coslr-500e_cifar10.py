# Hallucinator + SimCLR, CIFAR-10 (official DDP_simclr.py --generator with models/simclr_generator.py;
# the Hallucinator repo ships no SimCLR config, so the hyper-parameters are those of the
# ContrastiveCrop CIFAR-10 SimCLR config the code base derives from: ResNet-18 CIFAR stem,
# projection 512 -> 512 -> 128 (Linear-ReLU-Linear), NT-Xent T = 0.5 scaled by T / 0.07
# (`base_temperature`), SGD lr 0.5 / wd 1e-4, batch 512, 500 epochs, cosine to 0.1 x lr, SyncBN).
# Generator 256 -> 256 -> 256 -> 128 on the two views' projections (separate forwards).
_base_ = ['./hallucinator-mocov2_resnet18-cifar_1xb512-coslr-500e_cifar10.py']
temperature = 0.5
model = dict(
    _delete_=True,
    type='mmmask.HallucinatorSimCLR',
    data_preprocessor={{_base_.data_preprocessor}},
    feat_dim=128,
    backbone=dict(type='ResNet_CIFAR', depth=18, out_indices=(3, ), norm_cfg=dict(type='SyncBN'),
                  zero_init_residual=False),
    neck=dict(type='MoCoV2Neck', in_channels=512, hid_channels=512, out_channels=128,
              with_avg_pool=True),
    head=dict(type='ContrastiveHead', temperature=temperature,
              loss=dict(type='CrossEntropyLoss', loss_weight=temperature / 0.07)),
    hallucinator=dict(type='mmmask.HallucinatorGenerator', feat_dim=128, hidden_dim=256,
                      max_ratio=0.1))
