# mmpretrain's MAE at toy scale: ViT 128-d x 4 blocks x 4 heads, patch 8 on 32 px (4x4 tokens),
# 64-d x 2-block decoder, norm-pix MSE. The reference every toy objective is compared to.
toy_vit = dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512)
model = dict(
    type='MAE',
    backbone=dict(type='MAEViT', arch=toy_vit, img_size=32, patch_size=8, mask_ratio=0.75),
    neck=dict(type='MAEPretrainDecoder', num_patches=16, patch_size=8, in_chans=3,
              embed_dim=128, decoder_embed_dim=64, decoder_depth=2, decoder_num_heads=4,
              mlp_ratio=4.0),
    head=dict(type='MAEPretrainHead', norm_pix=True, patch_size=8,
              loss=dict(type='PixelReconstructionLoss', criterion='L2')),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])
