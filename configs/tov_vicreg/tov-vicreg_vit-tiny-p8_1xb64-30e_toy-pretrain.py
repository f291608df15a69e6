# TOV-VICReg on the built-in moving-digit clips (toy `seq` world: 60 train clips x 8 frames of
# 64x64): two augmented 32-px views of frame t (VICReg) + lightly augmented t-1 / t+1 (temporal
# order verification on the backbone's cls representations). Toy ViT 128-d x 4 blocks, patch 8,
# DINO forward (cls after the final LN). Coefficients: the official argparse defaults (inv 25,
# var 25, cov 1, temporal 1; the run script's 10/10/10/0.1 collapsed at this budget: variance term
# stuck at 0.87); covariance divided by the configured batch size - 1 (drop_last).
# The frozen-feature probes (mmmask.KNNEvalHook on the cls token, k-NN + linear) run on the
# built-in digit crops (toy `cls` world, 32 px, 10 classes) before and after training.
#   python tools/train.py configs/tov_vicreg/tov-vicreg_vit-tiny-p8_1xb64-30e_toy-pretrain.py
_base_ = [
    '../_base_/datasets/toy_contrastive.py', '../_base_/schedules/toy_pretrain_30e.py',
    '../_base_/pretrain_runtime.py'
]
batch_size = 64
toy_vit = dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512)
model = dict(
    type='mmmask.TOVVICReg',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmmask.MaskedViT', arch=toy_vit, img_size=32, patch_size=8,
                  fixed_pos_embed=False, out_type='cls_token', patch_cfg=dict(padding=0)),
    neck=dict(type='mmmask.VICRegProjector', in_channels=128, mlp='512-512-512'),
    head=dict(type='mmmask.TemporalOrderHead', in_channels=128),
    loss=dict(type='mmmask.VICRegLoss', sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0,
              batch_size=batch_size),
    temporal_coeff=1.0)

# frame t: two views (crop + colour); t-1 / t+1: resize + colour only (official augmentation3).
# Crops of 10-50% of the 64-px frame bring the digits to the scale of the probe's digit crops.
anchor_view = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.1, 0.5), backend='pillow'),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.2,
                          hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
]
neighbour_view = [
    dict(type='Resize', scale=32, backend='pillow'),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.2,
                          hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
]
train_pipeline = [
    dict(type='mmmask.LoadFrameWithNeighbours'),
    dict(type='mmmask.MultiViewWithKeys', transforms=[anchor_view, neighbour_view, neighbour_view],
         num_views=[2, 1, 1], sources=[None, 'img_prev', 'img_next']),
    dict(type='PackInputs'),
]
# the probe reads the cls token (the representation TOV-VICReg trains; random init: chance)
custom_hooks = [
    dict(type='mmmask.KNNEvalHook', train_dataloader={{_base_.knn_bank}},
         val_dataloader={{_base_.knn_query}}, num_classes=10, k=20, temperature=0.07,
         pool='cls', linear_probe=True)
]
# AdamW of the toy schedule, lr 3e-3 and weight decay 1e-4 (1.5e-3 / 0.05 barely moved in 150 its)
optim_wrapper = dict(optimizer=dict(lr=3e-3, weight_decay=1e-4))
train_dataloader = dict(
    batch_size=batch_size,
    drop_last=True,
    dataset=dict(_delete_=True, type='mmmask.ToyData', world='seq',
                 reader='mmmask.FrameSequenceDataset', data_root='data/toy/seq',
                 ann_file='train.json', boundary='inside', pipeline=train_pipeline))
