"""GMM attention (Li et al., Pattern Recognition 2024): the official small ViT and the generic
attention-bias wrapper (here on an mmpretrain Swin, whose window attention gets the GMM)."""

CASES = {
    'GMMViT': dict(
        kwargs=dict(arch=dict(embed_dims=32, num_layers=2, num_heads=4, head_dims=8, mlp_ratio=2),
                    img_size=32, patch_size=4, mask_type='gmm', num_kernels=3),
        input_size=(32, 32),
        out_shapes=[(32, )]),
    'WithAttentionBias': dict(
        kwargs=dict(backbone=dict(type='mmpretrain.SwinTransformer',
                                  arch=dict(embed_dims=24, depths=[2, 2], num_heads=[3, 6]),
                                  img_size=32, patch_size=2, window_size=4, out_indices=(0, 1)),
                    bias_provider=dict(type='mmmask.GaussianMixtureMask', num_kernels=3)),
        out_shapes=[(24, 32, 48), (48, 16, 24)],
        # mmpretrain's Swin ignores negative out_indices (returns nothing for -1); the wrapper's
        # pass-through of out_indices is tested in test_gmm_vit.py
        out_indices=False),
}
