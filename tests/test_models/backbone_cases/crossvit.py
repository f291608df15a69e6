"""CrossViT (two branches, S bicubically resized 32 -> 48 px, patch 12 / 16)."""

CASES = {
    'CrossViT': dict(
        kwargs=dict(arch=dict(embed_dims=[16, 32], depths=[[1, 1, 0], [1, 2, 1]],
                              num_heads=[2, 2], mlp_ratios=[2, 2, 1]),
                    img_size=(48, 32), patch_size=(12, 16), drop_path_rate=0.1),
        input_size=(32, 32),
        out_shapes=[(16, ), (32, )]),
}
