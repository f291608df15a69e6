# HPM ViT-B/16 on ImageNet-1k, 800 epochs (Wang et al., CVPR 2023; paper: 84.2 fine-tune top-1,
# 48.5 ADE20K mIoU). MAE backbone + 512-d x 8 reconstruction decoder + 512-d x 8 loss predictor,
# r=0.75, raw-pixel MSE (--norm_pix_loss off) + relative ranking loss, EMA teacher (0.999 ->
# 0.9999 over the first 100 epochs) on the full image, easy-to-hard masking alpha 0 -> 0.5.
# Optimisation as MAE: AdamW (0.9, 0.95), wd 0.05, blr 1.5e-4 (lr = blr x batch / 256),
# 40 warmup epochs + cosine, RandomResizedCrop(0.2, 1) + flip, AMP.
# Batch 4096 (8 x 512) as mmpretrain's MAE configs; the official scripts train this schedule at
# 8 x 32 (lr = 1.5e-4): auto_scale_lr keeps lr = 1.5e-4 x batch / 256 for any batch.
_base_ = ['../_base_/datasets/imagenet_bs512_mae-pretrain.py', '../_base_/pretrain_runtime.py']


model = dict(
    type='mmmask.HPM',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.MaskedViT', arch='b', img_size=224, patch_size=16),
    neck=dict(type='mmmask.HPMDecoder', num_patches=196, patch_size=16, in_chans=3,
              embed_dim=768, decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16,
              mlp_ratio=4.0),
    head=dict(type='mmmask.HPMHead', patch_size=16, norm_pix=False, relative=True),
    mask_generator=dict(type='mmmask.HardPatchMasking', ratio=0.75, alpha_max=0.5),
    teacher=dict(decay=0.999, schedule='hpm', end_decay=0.9999),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])

# official: timm add_weight_decay (no decay on 1-D weights and biases)
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1.5e-4 * 4096 / 256, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=40,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=760, eta_min=0.0, by_epoch=True, begin=40, end=800,
         convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=800)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
custom_hooks = []
randomness = dict(seed=0, diff_rank_seed=True)
resume = True
auto_scale_lr = dict(base_batch_size=4096)
