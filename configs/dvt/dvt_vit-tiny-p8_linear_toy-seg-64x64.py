# DVT dense probe on the toy scenes: the frozen toy ViT
# (dvt_vit-tiny-p8_1xb8-1k_toy-seg-64x64.py) + the stage-2 DVT denoiser (trained by
# tools/analysis_tools/dvt_fit.py on stage-1 outputs of toy-seg training images), linear head
# (1x1 conv, as the paper's linear probe) on the 8x8 map.
# The baseline is dvt_vit-tiny-p8-raw_linear_toy-seg-64x64.py (same, without denoiser).
#   python tools/analysis_tools/dvt_fit.py \
#       configs/dvt/dvt_vit-tiny-p8_1xb8-1k_toy-seg-64x64.py \
#       work_dirs/dvt_vit-tiny-p8_1xb8-1k_toy-seg-64x64/iter_1000.pth \
#       data/toy/seg/images/training --work-dir work_dirs/dvt_toy_denoiser --num-images 64 \
#       --num-views 64 --stage1-iters 300 --pixel-bsz 1024 --field fourier --stage2-iters 500 \
#       --lr 1e-3
#   python tools/train.py configs/dvt/dvt_vit-tiny-p8_linear_toy-seg-64x64.py
_base_ = ['../_base_/seg_runtime.py', '../_base_/datasets/toy_seg.py',
          '../_base_/schedules/toy_2k.py']
vit_checkpoint = 'work_dirs/dvt_vit-tiny-p8_1xb8-1k_toy-seg-64x64/iter_1000.pth'
denoiser_checkpoint = 'work_dirs/dvt_toy_denoiser/denoiser.pth'
data_preprocessor = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
                         seg_pad_val=255, size=(64, 64))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='mmmask.DenoisedViT',
        vit=dict(type='mmpretrain.VisionTransformer',
                 arch=dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512),
                 img_size=64, patch_size=8,
                 init_cfg=dict(type='Pretrained', checkpoint=vit_checkpoint, prefix='backbone.')),
        denoiser=dict(num_blocks=1),
        denoiser_checkpoint=denoiser_checkpoint,
        freeze_vit=True),
    decode_head=dict(
        type='FCNHead', in_channels=128, in_index=0, channels=128, num_convs=0,
        concat_input=False, dropout_ratio=0.0, num_classes=12, align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
# linear probe: only the head trains (the DenoisedViT is frozen end to end here)
optim_wrapper = dict(
    optimizer=dict(lr=1e-3, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.0, decay_mult=0.0)}))
train_cfg = dict(max_iters=500, val_interval=500)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=50, end=500, by_epoch=False),
]
default_hooks = dict(checkpoint=dict(interval=500, max_keep_ckpts=1))
