# CMAE (2-D transfer of Point-CMAE, Ren et al., ACCV 2024) ViT-B/16 on ImageNet-1k. Point-CMAE
# has no image recipe: this is mmpretrain's MAE ViT-B/16 300-epoch recipe (batch 4096, blr 1.5e-4,
# 40 warm-up epochs, cosine, wd 0.05, RRC(0.2, 1) + flip, mask ratio 0.75, 512-d x 8 decoder)
# with Point-CMAE's additions: a second independent mask, a second decoder (own mask token and
# position embedding, pos re-added before every block, no qkv bias) and the co-masked consistency
# term (official all-pairs form, λ = 1; see README.md).
_base_ = ['../_base_/datasets/imagenet_bs512_mae-pretrain.py', '../_base_/pretrain_runtime.py']
model = dict(
    type='mmmask.CMAE',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.MaskedViT', arch='b', img_size=224, patch_size=16),
    neck=dict(type='mmmask.CMAEDecoder', num_patches=196, patch_size=16, in_chans=3,
              embed_dim=768, decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16,
              mlp_ratio=4.0, qkv_bias=False, pos_every_block=True),
    head=dict(type='MAEPretrainHead', norm_pix=True, patch_size=16,
              loss=dict(type='PixelReconstructionLoss', criterion='L2')),
    mask_generator=dict(type='mmmask.DoubleMasking',
                        generator=dict(type='mmmask.RandomMasking', ratio=0.75)),
    contrast_weight=1.0,
    contrast_mode='all_pairs',
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1.5e-4 * 4096 / 256, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'ln': dict(decay_mult=0.0),
            'norm': dict(decay_mult=0.0),
            'bias': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.)
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=40,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=260, by_epoch=True, begin=40, end=300,
         convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=300)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
auto_scale_lr = dict(base_batch_size=4096)
