# Hi-End-MAE (2-D transfer) at toy scale: the MAE toy setting (ViT 128-d x 4 blocks x 4 heads,
# patch 8 on 32 px, 4x4 tokens, r=0.75; same data/schedule/probes as
# configs/quickstart/mae_vit-tiny-p8_1xb64-30e_toy-pretrain.py) with the encoder-driven decoder:
# 64-d, 2 self-attention blocks, then 3 cross blocks reading the raw outputs of encoder blocks
# 3, 2, 1 (tap_indices (0, 1, 2), 0-based; the official 12-block model reads (3, 6, 9)).
#   python tools/train.py configs/hi_end_mae/hi-end-mae_vit-tiny-p8_1xb64-30e_toy-pretrain.py
_base_ = [
    '../_base_/models/mae_vit-tiny-p8_toy.py', '../_base_/datasets/toy_pretrain.py',
    '../_base_/schedules/toy_pretrain_30e.py', '../_base_/pretrain_runtime.py'
]
model = dict(
    _delete_=True,
    type='mmmask.HiEndMAE',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.MaskedViT', arch={{_base_.toy_vit}}, img_size=32, patch_size=8),
    neck=dict(type='mmmask.HiEndMAEDecoder', num_patches=16, embed_dim=128,
              out_channels=8 * 8 * 3, decoder_embed_dim=64, decoder_num_heads=4, self_depth=2,
              num_taps=3, mlp_ratio=4.0),
    # shuffled visible order, as the official batched_shuffle_indices
    mask_generator=dict(type='mmmask.RandomMasking', ratio=0.75, sort_keep=False),
    tap_indices=(0, 1, 2),
    patch_size=8,
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])
