"""Sparsifiner (CVPR 2023): a 2-layer DeiT with connectivity predictors, 32x32 input, 4x4 patches."""
CASES = {
    'Sparsifiner': dict(
        kwargs=dict(arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64),
                    img_size=32, patch_size=8, reduce_n_factor=2, coef_topk=4,
                    out_type='featmap'),
        input_size=(32, 32),
        out_shapes=[(32, 4, 4)]),
}
