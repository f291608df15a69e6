"""S2AFormer (arXiv 2505.22195): four stages, strides 4/8/16/32."""
CASES = {
    'S2AFormer': dict(
        kwargs=dict(arch=dict(embed_dims=[16, 32, 48, 64], depths=[1, 1, 1, 1],
                              num_heads=[1, 2, 2, 4], qk_dims=[4, 8, 8, 16],
                              sr_ratios=[4, 2, 2, 1], mlp_ratios=[2, 2, 2, 2])),
        out_shapes=[(16, 16, 24), (32, 8, 12), (48, 4, 6), (64, 2, 3)]),
}
