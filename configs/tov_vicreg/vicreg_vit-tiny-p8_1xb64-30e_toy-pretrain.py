# Plain VICReg (Bardes et al., ICLR 2022) on the built-in digit crops: two augmented 32-px views,
# the toy ViT (128-d x 4 blocks, patch 8, cls after the final LN), expander 512-512-512, the paper's
# coefficients (invariance 25, variance 25, covariance 1). k-NN / linear probes on the digits.
#   python tools/train.py configs/tov_vicreg/vicreg_vit-tiny-p8_1xb64-30e_toy-pretrain.py
_base_ = [
    '../_base_/datasets/toy_contrastive.py', '../_base_/schedules/toy_pretrain_30e.py',
    '../_base_/pretrain_runtime.py'
]
toy_vit = dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512)
model = dict(
    type='mmmask.VICReg',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.MaskedViT', arch=toy_vit, img_size=32, patch_size=8,
                  fixed_pos_embed=False, out_type='cls_token', patch_cfg=dict(padding=0)),
    neck=dict(type='mmmask.VICRegProjector', in_channels=128, mlp='512-512-512'),
    loss=dict(type='mmmask.VICRegLoss', sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0))
