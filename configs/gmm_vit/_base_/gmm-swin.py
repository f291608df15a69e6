# GMM-Swin of the paper (official `--model swin --is_GMM`): mmpretrain's SwinTransformer in the
# official small-resolution setting (patch 2, C 96, depths [2, 6, 4], heads [3, 6, 12], window 4,
# MLP ratio 2, absolute position embedding, stochastic depth 0.1 increasing linearly) with a
# Gaussian mixture mask (K = 5) on every window attention, applied to the scaled window logits
# before the relative position bias; mmmask.WithAttentionBias keeps the Swin checkpoint keys.
_base_ = ['./gmm-vit.py']
swin = dict(
    type='mmpretrain.SwinTransformer',
    arch=dict(embed_dims=96, depths=[2, 6, 4], num_heads=[3, 6, 12]),
    img_size=32,
    patch_size=2,
    window_size=4,
    drop_path_rate=0.1,
    use_abs_pos_embed=True,
    out_indices=(2, ),
    stage_cfgs=dict(block_cfgs=dict(ffn_ratio=2.)))
model = dict(
    backbone=dict(_delete_=True, type='mmmask.WithAttentionBias', backbone=swin,
                  bias_provider=dict(type='mmmask.GaussianMixtureMask', num_kernels=5)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(in_channels=384))
