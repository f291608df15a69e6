# Hallucinator + SimSiam, CIFAR-10 (official DDP_simsiam.py with models/simsiam.py, generator on;
# no SimSiam config in the Hallucinator repo, so dims/optimiser are those of the ContrastiveCrop
# CIFAR-10 SimSiam config the code base derives from: ResNet-18 CIFAR stem (zero-init residual),
# projector 512-512-512 (3 layers, last BN without affine), predictor 512 -> 128 -> 512,
# SGD lr 0.5 / wd 1e-4, batch 512, 500 epochs, cosine to 0.1 x lr, predictor lr fixed, SyncBN).
# Generator 1024 -> 1024 -> 1024 -> 512 (official Generator(1024, 1024, 512)) on the predictor
# outputs, two λ draws per step.
# Official quirk reproduced: with fix_pred_lr the official optimiser gets only the encoder and
# predictor parameters, so the generator is never updated (a fixed random MLP); lr_mult/decay_mult
# 0 below do the same. Delete the 'hallucinator' entry of custom_keys to train it.
_base_ = ['./hallucinator-mocov2_resnet18-cifar_1xb512-coslr-500e_cifar10.py']
lr = 0.5
model = dict(
    _delete_=True,
    type='mmmask.HallucinatorSimSiam',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='ResNet_CIFAR', depth=18, out_indices=(3, ), norm_cfg=dict(type='SyncBN'),
                  zero_init_residual=True),
    neck=dict(type='NonLinearNeck', in_channels=512, hid_channels=512, out_channels=512,
              num_layers=3, with_last_bn_affine=False, with_avg_pool=True),
    head=dict(type='LatentPredictHead', loss=dict(type='CosineSimilarityLoss'),
              predictor=dict(type='NonLinearNeck', in_channels=512, hid_channels=128,
                             out_channels=512, with_avg_pool=False, with_last_bn=False,
                             with_last_bias=True)),
    hallucinator=dict(type='mmmask.HallucinatorGenerator', feat_dim=512, hidden_dim=1024,
                      max_ratio=0.1))
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=lr, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={
        'predictor': dict(fix_lr=True),
        'hallucinator': dict(lr_mult=0., decay_mult=0.)
    }))
custom_hooks = [dict(type='SimSiamHook', priority='HIGH', fix_pred_lr=True, lr=lr)]
