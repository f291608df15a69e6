# MaskAlign on the built-in digits: a visible-only toy student (30% of the 4x4 tokens, drawn by
# the teacher's cls attention) aligned to a frozen toy teacher at its last 2 of 4 levels. The
# toy "CLIP" is the mmpretrain MAE baseline (configs/quickstart/mae_vit-tiny-p8_1xb64-60e_toy-
# pretrain.py), loaded into an mmpretrain VisionTransformer; train it first:
#   python tools/train.py configs/quickstart/mae_vit-tiny-p8_1xb64-60e_toy-pretrain.py
#   python tools/train.py configs/maskalign/maskalign_vit-tiny-p8_1xb64-30e_toy-pretrain.py
_base_ = [
    '../_base_/datasets/toy_pretrain.py', '../_base_/schedules/toy_pretrain_30e.py',
    '../_base_/pretrain_runtime.py'
]
toy_vit = dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512)
teacher_checkpoint = 'work_dirs/mae_vit-tiny-p8_1xb64-60e_toy-pretrain/epoch_60.pth'
model = dict(
    type='mmmask.MaskAlign',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.MaskedViT', arch=toy_vit, img_size=32, patch_size=8,
                  drop_path_rate=0.1),
    # the teacher saw the same pixel statistics: re-normalisation is the identity here
    teacher=dict(type='VisionTransformer', arch=toy_vit, img_size=32, patch_size=8,
                 init_cfg=dict(type='Pretrained', checkpoint=teacher_checkpoint,
                               prefix='backbone.')),
    teacher_mean=[127.5, 127.5, 127.5], teacher_std=[64.0, 64.0, 64.0],
    mask_generator=dict(type='mmmask.AttentionGuidedMasking', ratio=0.7),
    target_norm='whiten',
    neck=dict(type='mmmask.DynamicAlignNeck', in_channels=128, out_channels=128,
              num_student_levels=4, fusion='linear', head_type='linear'),
    head=dict(type='mmmask.MultiLevelAlignHead', loss_weights='top2', loss_type='smoothl1'),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])
