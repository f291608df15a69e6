# MTO at toy scale on SimMIM: the toy ViT of the MAE baseline (128-d x 4 blocks x 4 heads, patch 8
# on 32 px, 4x4 tokens) with a learned mask token in the encoder, SimMIM's linear pixel-shuffle
# decoder and L1 on masked pixels, masks from the library (per-token random cells, ratio 0.6),
# plus masked token optimisation: attention weight recalibration and L_spa / L_e / L_r
# (UNVERIFIED reading of the paper, see configs/mto/README.md). Same data/schedule/probes as
# configs/quickstart/mae_vit-tiny-p8_1xb64-30e_toy-pretrain.py.
# Baseline (plain SimMIM): --cfg-options model.recalibrate=False model.loss_spa=0
#   model.loss_e=0 model.loss_r=0
#   python tools/train.py configs/mto/mto_vit-tiny-p8_1xb64-30e_toy-pretrain.py
_base_ = [
    '../_base_/models/mae_vit-tiny-p8_toy.py', '../_base_/datasets/toy_pretrain.py',
    '../_base_/schedules/toy_pretrain_30e.py', '../_base_/pretrain_runtime.py'
]
model = dict(
    _delete_=True,
    type='mmmask.MTO',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.MaskedViT', mask_token=True, fixed_pos_embed=False,
                  arch={{_base_.toy_vit}}, img_size=32, patch_size=8),
    neck=dict(type='SimMIMLinearDecoder', in_channels=128, encoder_stride=8),
    head=dict(type='SimMIMHead', patch_size=8,
              loss=dict(type='PixelReconstructionLoss', criterion='L1', channel=3)),
    mask_generator=dict(type='mmmask.CoarseRandomMasking', ratio=0.6, mask_patch_size=8,
                        model_patch_size=8),
    recalibrate=True,
    recalib_gamma=0.0,
    loss_spa=0.1,
    loss_e=0.1,
    loss_r=0.1,
    init_cfg=[
        dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.0),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])
