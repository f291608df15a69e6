"""DVT (ECCV 2024): a small frozen mmpretrain ViT + the stage-2 denoiser on its last layer."""

CASES = {
    'DenoisedViT': dict(
        kwargs=dict(vit=dict(type='mmpretrain.VisionTransformer',
                             arch=dict(embed_dims=64, num_layers=2, num_heads=2,
                                       feedforward_channels=128),
                             img_size=32, patch_size=8),
                    denoiser=dict(num_blocks=1), out_indices=(0, 1)),
        out_shapes=[(64, 8, 12), (64, 8, 12)]),
}
