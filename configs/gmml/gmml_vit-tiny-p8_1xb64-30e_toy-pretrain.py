# GMML at toy scale: the toy ViT of the MAE baseline (128-d x 4 blocks x 4 heads, patch 8 on
# 32 px, 4x4 tokens; learned position embedding, full sequence) on the same data/schedule/probes
# as configs/quickstart/mae_vit-tiny-p8_1xb64-30e_toy-pretrain.py, with GMML's pixel-space group
# corruption (drop_perc 0.75, noise, drop_align 1, rectangle sides 1-8 px; batch replace 0.3),
# the LayerNorm'ed mean of blocks 2 and 4 (0-based (1, 3): the official 6-8-10-12 of 12 blocks
# is every second block of the upper half), RECHead and L1 on the corrupted pixels.
# One view per image (the paper config uses two global crops).
#   python tools/train.py configs/gmml/gmml_vit-tiny-p8_1xb64-30e_toy-pretrain.py
_base_ = [
    '../_base_/models/mae_vit-tiny-p8_toy.py', '../_base_/datasets/toy_pretrain.py',
    '../_base_/schedules/toy_pretrain_30e.py', '../_base_/pretrain_runtime.py'
]
model = dict(
    _delete_=True,
    type='mmmask.GMML',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.MaskedViT', fixed_pos_embed=False, arch={{_base_.toy_vit}},
                  img_size=32, patch_size=8, drop_path_rate=0.1),
    head=dict(type='mmmask.GMMLReconHead', in_dim=128, in_chans=3, patch_size=8),
    mask_generator=dict(type='mmmask.GMMLCorruption', drop_perc=0.75, drop_replace=0.3,
                        drop_align=1, drop_type='noise'),
    recons_layers=(1, 3),
    drop_only=True,
    init_cfg=[
        dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.0),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])
# official: clip 3.0 (per-parameter in the official code, global norm here)
optim_wrapper = dict(clip_grad=dict(max_norm=3.0))
