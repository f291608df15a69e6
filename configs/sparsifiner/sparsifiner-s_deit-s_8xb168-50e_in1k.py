# Sparsifiner-S on ImageNet-1k as published (official default yaml
# experiments/sparsifiner_default_config.yaml + src/main.py defaults): DeiT-S initialised from
# deit_small_patch16_224-cd65a155.pth, attention keep rate 0.25 (ceil(0.25 * 197) = 50 keys per
# query), reduce_n_factor 6 (r = 32), reduce_c_factor 2, basis threshold 0.02, top-8 coefficients,
# no token pruning; 8 GPUs x 168, AdamW wd 0.05, 50 epochs:
# * epochs 0-5, phase 1 (`attn_recon`): only the connectivity predictors train, attention
#   reconstruction loss 0.01 (MSE-sum, mean over layers), dense attention; lr: 3 warm-up epochs from
#   0 to 3e-4, cosine to 2e-4 at epoch 5;
# * epochs 5-50, phase 2 (`cls_distill`): masks applied, backbone trains with CE (label smoothing
#   0.1 / Mixup 0.8 / CutMix 1.0) + 0.5 KL to the DeiT-S teacher's logits + 0.5 MSE to its patch
#   tokens; lr: 3 warm-up epochs from 0 to 8e-5, cosine to 2e-6 at epoch 50.
# DeiT-recipe data (RandAugment rand-m9-mstd0.5-inc1, random erasing 0.25, bicubic), EMA 0.9999
# (official model_ema default). Prepare the weights (student init and teacher) with:
#   python tools/model_converters/sparsifiner2mmmask.py deit_small_patch16_224-cd65a155.pth \
#       checkpoints/deit-small_p16_224_fb-cd65a155_mmmask.pth
_base_ = ['../_base_/datasets/imagenet_bs128_ppma_224.py', '../_base_/cls_runtime.py']
deit_checkpoint = 'checkpoints/deit-small_p16_224_fb-cd65a155_mmmask.pth'
model = dict(
    type='mmmask.SparsifinerClassifier',
    data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor', num_classes=1000,
                           mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           to_rgb=True),
    backbone=dict(
        type='mmmask.Sparsifiner', arch='sparsifiner-s', img_size=224, patch_size=16,
        attn_keep_rate=0.25, reduce_n_factor=6, reduce_c_factor=2, basis_threshold=0.02,
        coef_topk=8, drop_path_rate=0.0),
    neck=None,
    head=dict(type='VisionTransformerClsHead', num_classes=1000, in_channels=384,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')),
    teacher=dict(
        type='mmpretrain.ImageClassifier',
        backbone=dict(type='mmpretrain.VisionTransformer', arch='deit-small', img_size=224,
                      patch_size=16, out_type='raw'),
        neck=None,
        head=dict(type='mmpretrain.VisionTransformerClsHead', num_classes=1000,
                  in_channels=384),
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'),
        init_cfg=dict(type='Pretrained', checkpoint=deit_checkpoint)),
    recon_loss=dict(type='mmmask.SparsifinerReconLoss', loss_weight=0.01),
    phase1_weights=dict(cls=0.0, cls_distill=0.0, token_distill=0.0, recon=1.0),
    phase2_weights=dict(cls=1.0, cls_distill=0.5, token_distill=0.5, recon=0.0),
    freeze_backbone_in_recon=True,
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
    # the student starts from DeiT-S (backbone and head); the predictors keep their own init
    init_cfg=dict(type='Pretrained', checkpoint=deit_checkpoint))
train_dataloader = dict(batch_size=168)
val_dataloader = dict(batch_size=168)
test_dataloader = val_dataloader

# AdamW, wd 0.05 except biases / norms / cls_token / pos_embed (official get_parameter_groups).
# The learning rates are the official per-phase absolute values for 8 x 168.
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=3e-4, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'.cls_token': dict(decay_mult=0.0),
                                    '.pos_embed': dict(decay_mult=0.0)}))
param_scheduler = [
    # phase 1: 0 -> 3e-4 in 3 epochs, cosine to 2e-4 at epoch 5
    dict(type='LinearLR', start_factor=1e-3, end_factor=1.0, by_epoch=True, begin=0, end=3,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=2e-4, by_epoch=True, begin=3, end=5,
         convert_to_iter_based=True),
    # phase 2: from 2e-4 x 1e-3 up to 2e-4 x 0.4 = 8e-5 in 3 epochs, cosine to 2e-6 at epoch 50
    dict(type='LinearLR', start_factor=1e-3, end_factor=0.4, by_epoch=True, begin=5, end=8,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=2e-6, by_epoch=True, begin=8, end=50,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=50, val_interval=1)
val_cfg = dict()
test_cfg = dict()
custom_hooks = [
    dict(type='mmmask.SparsifinerPhaseHook', switch_epoch=5),
    dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL'),
]
# the phases freeze different parameters (the predictors in phase 2, the rest in phase 1)
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False))
auto_scale_lr = dict(base_batch_size=8 * 168)
