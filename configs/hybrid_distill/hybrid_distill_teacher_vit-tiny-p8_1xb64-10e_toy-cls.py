# The toy supervised ("CL/supervised") teacher of Hybrid Distill, the stand-in for the paper's
# DeiT-B: the toy ViT (128-d x 4 blocks, patch 8, 32 px) fine-tuned with labels on the built-in
# digits from the toy MAE (configs/quickstart/mae_vit-tiny-p8_1xb64-60e_toy-pretrain.py, run it
# first), 10 epochs at batch 64 (320 iterations). Trained from scratch instead, a toy ViT stays at
# chance on these cluttered digits (8.4 % after 10 epochs, 11.8 % after 30; seed 0); from the MAE
# it reached 17.8-21.8 % (two MAE runs). Its checkpoint loads into an mmpretrain
# VisionTransformer with prefix 'backbone.' (see hybrid_distill_vit-tiny-p8_1xb64-10e_toy-pretrain.py):
#   python tools/train.py configs/quickstart/mae_vit-tiny-p8_1xb64-60e_toy-pretrain.py
#   python tools/train.py configs/hybrid_distill/hybrid_distill_teacher_vit-tiny-p8_1xb64-10e_toy-cls.py
_base_ = [
    '../_base_/datasets/toy_cls.py', '../_base_/schedules/toy_cls_30e.py',
    '../_base_/cls_runtime.py'
]
toy_vit = dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512)
model = dict(
    type='ImageClassifier',
    backbone=dict(type='VisionTransformer', arch=toy_vit, img_size=32, patch_size=8,
                  out_type='cls_token', drop_path_rate=0.0,
                  init_cfg=dict(type='Pretrained', prefix='backbone.',
                                checkpoint='work_dirs/mae_vit-tiny-p8_1xb64-60e_toy-pretrain/'
                                'epoch_60.pth')),
    head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=128,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )),
    init_cfg=[
        dict(type='TruncNormal', layer='Linear', std=.02),
        dict(type='Constant', layer='LayerNorm', val=1., bias=0.),
    ])
train_dataloader = dict(batch_size=64)
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=9, eta_min=1e-5, by_epoch=True, begin=1, end=10,
         convert_to_iter_based=True)
]
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=10)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=1),
                     logger=dict(type='LoggerHook', interval=10))
