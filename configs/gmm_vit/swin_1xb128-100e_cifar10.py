# The Swin baseline of the paper on CIFAR-10 (official `--model swin`): the GMM-Swin model without
# the mask, same recipe. Paper: 95.26 %.
_base_ = ['./gmm-swin_1xb128-100e_cifar10.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.SwinTransformer',
        arch=dict(embed_dims=96, depths=[2, 6, 4], num_heads=[3, 6, 12]),
        img_size=32,
        patch_size=2,
        window_size=4,
        drop_path_rate=0.1,
        use_abs_pos_embed=True,
        out_indices=(2, ),
        stage_cfgs=dict(block_cfgs=dict(ffn_ratio=2.))))
