# HPM at toy scale: the MAE toy setting (ViT 128-d x 4 blocks x 4 heads, patch 8 on 32 px, 4x4
# tokens; 64-d x 2-block decoder, r=0.75; same data/schedule/probes as
# configs/quickstart/mae_vit-tiny-p8_1xb64-60e_toy-pretrain.py) plus HPM's loss predictor
# (64-d x 2 blocks), relative ranking loss, EMA teacher and easy-to-hard hard-patch masking.
#   python tools/train.py configs/hpm/hpm_vit-tiny-p8_1xb64-60e_toy-pretrain.py
_base_ = [
    '../_base_/models/mae_vit-tiny-p8_toy.py', '../_base_/datasets/toy_pretrain.py',
    '../_base_/schedules/toy_pretrain_60e.py', '../_base_/pretrain_runtime.py'
]
model = dict(
    _delete_=True,
    type='mmmask.HPM',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.MaskedViT', arch={{_base_.toy_vit}}, img_size=32, patch_size=8),
    neck=dict(type='mmmask.HPMDecoder', num_patches=16, patch_size=8, in_chans=3,
              embed_dim=128, decoder_embed_dim=64, decoder_depth=2, decoder_num_heads=4,
              mlp_ratio=4.0),
    # official recipe: raw-pixel targets (--norm_pix_loss off), relative ranking loss
    head=dict(type='mmmask.HPMHead', patch_size=8, norm_pix=False, relative=True),
    mask_generator=dict(type='mmmask.HardPatchMasking', ratio=0.75, alpha_max=0.5),
    teacher=dict(decay=0.999, schedule='hpm', end_decay=0.9999),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])
