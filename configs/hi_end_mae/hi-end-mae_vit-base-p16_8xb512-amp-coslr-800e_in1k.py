# Hi-End-MAE, 2-D transfer to ImageNet-1k with ViT-B/16 — OUR transfer, not a published setting:
# the paper (Tang et al., MedIA 2025) pretrains 3-D ViTs on 10k CT volumes and reports medical
# segmentation only. Architecture as the official base model (``build_vit_base_hi_end_mae_p16_3d``):
# decoder 384-d, 12 heads, 2 self-attention blocks, 3 cross blocks reading the raw outputs of
# encoder blocks 10, 7, 4 (tap_indices (3, 6, 9) 0-based); per-patch-normalised pixel targets
# (non-affine LayerNorm), MSE on the masked tokens, r=0.75, shuffled visible order. The image
# recipe is MAE's ImageNet one (AdamW (0.9, 0.95), wd 0.05, blr 1.5e-4, batch 4096, 40 warmup
# epochs, RandomResizedCrop(0.2, 1) + flip, AMP); the official medical recipe is lr 1e-4 (not
# batch-scaled), 24 volumes/GPU, 1000 epochs, 10 warmup epochs, same AdamW betas/wd.
_base_ = ['../_base_/datasets/imagenet_bs512_mae-pretrain.py', '../_base_/pretrain_runtime.py']


model = dict(
    type='mmmask.HiEndMAE',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.MaskedViT', arch='b', img_size=224, patch_size=16),
    neck=dict(type='mmmask.HiEndMAEDecoder', num_patches=196, embed_dim=768,
              out_channels=16 * 16 * 3, decoder_embed_dim=384, decoder_num_heads=12,
              self_depth=2, num_taps=3, mlp_ratio=4.0),
    mask_generator=dict(type='mmmask.RandomMasking', ratio=0.75, sort_keep=False),
    tap_indices=(3, 6, 9),
    patch_size=16,
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])

optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1.5e-4 * 4096 / 256, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.)
        }))
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
