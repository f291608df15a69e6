# Hybrid Distill on the built-in digits: a fresh toy ViT student (visible tokens only) mimics the
# final features of a frozen supervised toy ViT (the "CL/supervised" teacher) and the attention
# relations of a frozen MAE toy ViT (the MIM teacher) at its blocks 1-3 of 4; progressive
# redundant token masking from 0% to 50% of the 4x4 tokens over the run, ranked by the
# supervised teacher's cls attention. 30 epochs (960 iterations, ~2.5 CPU minutes). Train the
# teachers first:
#   python tools/train.py configs/hybrid_distill/hybrid_distill_teacher_vit-tiny-p8_1xb32-30e_toy-cls.py
#   python tools/train.py configs/quickstart/mae_vit-tiny-p8_1xb64-60e_toy-pretrain.py
#   python tools/train.py configs/hybrid_distill/hybrid_distill_vit-tiny-p8_1xb64-30e_toy-pretrain.py
_base_ = [
    '../_base_/datasets/toy_pretrain.py', '../_base_/schedules/toy_pretrain_30e.py',
    '../_base_/pretrain_runtime.py'
]
toy_vit = dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512)
cl_teacher_checkpoint = ('work_dirs/hybrid_distill_teacher_vit-tiny-p8_1xb32-30e_toy-cls/'
                         'epoch_30.pth')
mim_teacher_checkpoint = 'work_dirs/mae_vit-tiny-p8_1xb64-60e_toy-pretrain/epoch_60.pth'
model = dict(
    type='mmmask.HybridDistill',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.MaskedViT', arch=toy_vit, img_size=32, patch_size=8,
                  drop_path_rate=0.1),
    # both teachers saw the same pixel statistics as the student: no re-normalisation
    cl_teacher=dict(type='VisionTransformer', arch=toy_vit, img_size=32, patch_size=8,
                    init_cfg=dict(type='Pretrained', checkpoint=cl_teacher_checkpoint,
                                  prefix='backbone.')),
    mim_teacher=dict(type='VisionTransformer', arch=toy_vit, img_size=32, patch_size=8,
                     init_cfg=dict(type='Pretrained', checkpoint=mim_teacher_checkpoint,
                                   prefix='backbone.')),
    mask_generator=dict(type='mmmask.ProgressiveRedundantMasking', start_ratio=0.0,
                        end_ratio=0.5),
    mask_source='cl',
    relation_layers=None,  # every block but the last
    target_norm='whiten',
    neck=dict(type='mmmask.DynamicAlignNeck', in_channels=128, out_channels=128,
              num_student_levels=1, fusion='simple', head_type='linear'),
    head=dict(type='mmmask.HybridDistillHead', feat_weight=1.0, rel_weight=1.0,
              smooth_l1_beta=2.0),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])
# the toy pretraining schedule (AdamW 1.5e-3, 1 warm-up epoch + cosine, 30 epochs); at 10 epochs
# the student's k-NN gain is about half (22.4 -> 27.0 vs 33.6, seed 0)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=30, max_keep_ckpts=1))
