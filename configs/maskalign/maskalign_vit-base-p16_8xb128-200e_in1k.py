# MaskAlign (Xue et al., CVPR 2023) ViT-B/16 on ImageNet-1k, the official recipe
# (OpenDriveLab/maskalign README): frozen CLIP ViT-B/16 teacher, attention-guided masking r=0.7,
# top-5 levels, linear fusion, whitened targets, 2*SmoothL1, linear heads; 200 epochs, batch
# 1024, blr 1.5e-4 (lr = blr * 1024 / 256), 20 warm-up epochs, cosine to 1e-5, wd 0.05,
# drop_path 0.1, RandomResizedCrop(0.2, 1) + flip. Paper: 85.4 top-1 after fine-tuning.
#
# The teacher: OpenAI CLIP ViT-B/16's vision tower converted to an mmpretrain VisionTransformer
# (pre_norm, QuickGELU, LN eps 1e-5):
#   python tools/model_converters/maskalign2mmmask.py --clip \
#       path/to/openai-clip-vit-base-patch16/pytorch_model.bin \
#       checkpoints/clip-vit-base-p16_openai.pth
_base_ = ['../_base_/datasets/imagenet_bs512_mae-pretrain.py', '../_base_/pretrain_runtime.py']
train_dataloader = dict(batch_size=128, num_workers=10)

teacher_checkpoint = 'checkpoints/clip-vit-base-p16_openai.pth'
model = dict(
    type='mmmask.MaskAlign',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.MaskedViT', arch='b', img_size=224, patch_size=16,
                  drop_path_rate=0.1),
    teacher=dict(type='VisionTransformer', arch='b', img_size=224, patch_size=16, pre_norm=True,
                 norm_cfg=dict(type='LN', eps=1e-5),
                 layer_cfgs=dict(act_cfg=dict(type='mmpretrain.QuickGELU')),
                 init_cfg=dict(type='Pretrained', checkpoint=teacher_checkpoint)),
    # ImageNet-normalised batch -> CLIP statistics (mmmask.MaskAlign's default)
    mask_generator=dict(type='mmmask.AttentionGuidedMasking', ratio=0.7),
    target_norm='whiten',
    neck=dict(type='mmmask.DynamicAlignNeck', in_channels=768, out_channels=768,
              num_student_levels=12, fusion='linear', head_type='linear'),
    head=dict(type='mmmask.MultiLevelAlignHead', loss_weights='top5', loss_type='smoothl1'),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])

optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1.5e-4 * 1024 / 256, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'ln': dict(decay_mult=0.0),
            'bias': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=20,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=180, eta_min=1e-5, by_epoch=True, begin=20, end=200,
         convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
auto_scale_lr = dict(base_batch_size=1024)
