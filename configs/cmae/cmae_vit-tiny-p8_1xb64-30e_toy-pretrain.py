# CMAE (2-D Point-CMAE) on the built-in digits: two independent 75% random masks, one shared toy
# ViT encoder, two 64-d x 2-block decoders (Point-CMAE semantics: pos re-added before every block,
# no qkv bias), norm-pix MSE per branch + co-masked consistency (official all-pairs form, λ = 1).
#   python tools/train.py configs/cmae/cmae_vit-tiny-p8_1xb64-30e_toy-pretrain.py
_base_ = [
    '../_base_/datasets/toy_pretrain.py', '../_base_/schedules/toy_pretrain_30e.py',
    '../_base_/pretrain_runtime.py'
]
toy_vit = dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512)
model = dict(
    type='mmmask.CMAE',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.MaskedViT', arch=toy_vit, img_size=32, patch_size=8),
    neck=dict(type='mmmask.CMAEDecoder', num_patches=16, patch_size=8, in_chans=3,
              embed_dim=128, decoder_embed_dim=64, decoder_depth=2, decoder_num_heads=4,
              mlp_ratio=4.0, qkv_bias=False, pos_every_block=True),
    head=dict(type='MAEPretrainHead', norm_pix=True, patch_size=8,
              loss=dict(type='PixelReconstructionLoss', criterion='L2')),
    mask_generator=dict(type='mmmask.DoubleMasking',
                        generator=dict(type='mmmask.RandomMasking', ratio=0.75)),
    contrast_weight=1.0,
    contrast_mode='all_pairs',
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])
