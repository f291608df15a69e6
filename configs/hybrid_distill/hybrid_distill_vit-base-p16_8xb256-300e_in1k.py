# Hybrid Distill (Shi et al., ICLR 2024, arXiv 2306.15876) ViT-B/16 on ImageNet-1k: the paper's
# ViT-B setting with a supervised DeiT-B teacher (final features, discrimination) and an MAE ViT-B
# teacher (token relations of blocks 1-11, diversity), alpha = beta = 1, 300 epochs. Paper: 83.7
# top-1 after fine-tuning. Everything the paper does not pin down (we could read only its abstract
# and the ICLR reviews) is our choice and is listed in README.md, "Assumptions": Smooth-L1 (beta 2)
# on whitened teacher features through a linear projection, per-head KL of the attention maps,
# progressive redundant masking 0 -> 50% ranked by DeiT's cls attention, batch 2048, AdamW
# lr 1.5e-4 * 2048 / 256, betas (0.9, 0.999), wd 0.05, 10 warm-up epochs + cosine, drop_path 0.1,
# RandomResizedCrop(0.2, 1) + flip.
#
# Teachers (mmpretrain model zoo; README.md, "Teachers"):
#   checkpoints/deit-base_in1k.pth    <- mmpretrain DeiT-B (configs/deit, deit-base_16xb64_in1k)
#   checkpoints/mae_vit-base-p16_1600e_in1k.pth <- mmpretrain MAE ViT-B 1600 ep (configs/mae)
_base_ = ['../_base_/datasets/imagenet_bs512_mae-pretrain.py', '../_base_/pretrain_runtime.py']
train_dataloader = dict(batch_size=256, num_workers=10)

cl_teacher_checkpoint = 'checkpoints/deit-base_in1k.pth'
mim_teacher_checkpoint = 'checkpoints/mae_vit-base-p16_1600e_in1k.pth'
model = dict(
    type='mmmask.HybridDistill',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.MaskedViT', arch='b', img_size=224, patch_size=16,
                  drop_path_rate=0.1),
    # DeiT-B: mmpretrain ImageClassifier checkpoint, backbone keys under 'backbone.'
    cl_teacher=dict(type='VisionTransformer', arch='deit-base', img_size=224, patch_size=16,
                    init_cfg=dict(type='Pretrained', checkpoint=cl_teacher_checkpoint,
                                  prefix='backbone.')),
    # MAE ViT-B: mmpretrain MAE checkpoint (MAEViT keys under 'backbone.')
    mim_teacher=dict(type='VisionTransformer', arch='b', img_size=224, patch_size=16,
                     init_cfg=dict(type='Pretrained', checkpoint=mim_teacher_checkpoint,
                                   prefix='backbone.')),
    mask_generator=dict(type='mmmask.ProgressiveRedundantMasking', start_ratio=0.0,
                        end_ratio=0.5),
    mask_source='cl',
    relation_layers=None,  # blocks 1-11 (every block but the last)
    target_norm='whiten',
    neck=dict(type='mmmask.DynamicAlignNeck', in_channels=768, out_channels=768,
              num_student_levels=1, fusion='simple', head_type='linear'),
    head=dict(type='mmmask.HybridDistillHead', feat_weight=1.0, rel_weight=1.0,
              smooth_l1_beta=2.0),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])

optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1.5e-4 * 2048 / 256, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'ln': dict(decay_mult=0.0),
            'bias': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=290, eta_min=1e-5, by_epoch=True, begin=10, end=300,
         convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=300)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
auto_scale_lr = dict(base_batch_size=2048)
