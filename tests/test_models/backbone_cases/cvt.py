"""CvT (convolutional token embedding + convolutional projections): multi-scale stage maps."""

CASES = {
    'CvT': dict(
        kwargs=dict(arch=dict(embed_dims=[16, 32, 48], depths=[1, 1, 2], num_heads=[1, 2, 3]),
                    out_type='featmap', drop_path_rate=0.1),
        # conv embeddings 7/4 (pad 2), 3/2, 3/2 on 64x96: grids 16x24, 8x12, 4x6
        out_shapes=[(16, 16, 24), (32, 8, 12), (48, 4, 6)]),
}
