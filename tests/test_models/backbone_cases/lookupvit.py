"""LookupViT (arXiv 2407.12753): the lookup feature map of the last block."""
CASES = {
    'LookupViT': dict(
        kwargs=dict(arch=dict(embed_dims=32, num_layers=2, num_heads=2), img_size=64,
                    patch_size=8, compressed_grid=[(3, 3), (2, 2)], out_type='featmap'),
        out_shapes=[(32, 8, 12)]),
}
