"""Hyena N-D (Zimerman & Wolf, AISTATS 2024): a hybrid HyenaViT (3 Hyena layers, then attention)
on a non-square 4×6 grid."""

CASES = {
    'HyenaViT': dict(
        kwargs=dict(arch=dict(embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64),
                    img_size=32, patch_size=16, num_hyena_layers=3,
                    out_type='featmap', hyena_cfg=dict(filter_hidden=16)),
        out_shapes=[(32, 4, 6)]),
}
