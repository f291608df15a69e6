# TOV-VICReg paper setting (Goulao & Oliveira 2023; official tov_vicreg/models/run_tov-vicreg.sh):
# ViT-tiny (192-d x 12 blocks x 3 heads, patch 8, DINO ViT with its 224-px position table
# interpolated to the 84x84 frames), projector 1024-1024-1024 (main.py default: the script passes no
# --mlp), coefficients inv = var = cov = 10, temporal 0.1, batch 512 (drop_last; the covariance
# divides by the configured 512 - 1), 10 epochs with 2 warm-up epochs, LARS base lr 0.6 x 512/256,
# weight decay 1e-6, momentum 0.9, AMP.
# Data: Atari DQN-Replay observations of 10 games x checkpoints {1, 25, 50}, the first 100k frames
# of each, as 84x84 grayscale PNG folders (one folder per game/checkpoint, frames in order; see
# README "Data"); an observation = 3 consecutive frames stacked as channels, its neighbours the
# adjacent 3-frame stacks (clamped at the ends).
_base_ = '../_base_/pretrain_runtime.py'
batch_size = 512
image_size = 84
data_preprocessor = dict(  # official: ConvertImageDtype(float) only, i.e. x / 255
    type='SelfSupDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.], to_rgb=False)
model = dict(
    type='mmmask.TOVVICReg',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='mmmask.MaskedViT', arch='deit-tiny', img_size=224, patch_size=8,
                  fixed_pos_embed=False, out_type='cls_token', patch_cfg=dict(padding=0)),
    neck=dict(type='mmmask.VICRegProjector', in_channels=192, mlp='1024-1024-1024'),
    head=dict(type='mmmask.TemporalOrderHead', in_channels=192),
    loss=dict(type='mmmask.VICRegLoss', sim_coeff=10.0, std_coeff=10.0, cov_coeff=10.0,
              batch_size=batch_size),
    temporal_coeff=0.1)

color_jitter = dict(type='RandomApply', prob=0.8, transforms=[
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)])
grayscale = dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
                 channel_weights=(0.114, 0.587, 0.2989))
# official augmentation1 / augmentation2 (BYOL recipe at 84 px) and augmentation3 (neighbours)
view1 = [
    dict(type='RandomResizedCrop', scale=image_size, crop_ratio_range=(0.08, 1.0),
         backend='pillow'),
    color_jitter, grayscale,
    dict(type='GaussianBlur', magnitude_range=(0.1, 0.2), magnitude_std='inf', prob=1.0),
    dict(type='RandomFlip', prob=0.5),
]
view2 = [
    dict(type='RandomResizedCrop', scale=image_size, crop_ratio_range=(0.08, 1.0),
         backend='pillow'),
    color_jitter, grayscale,
    dict(type='GaussianBlur', magnitude_range=(0.1, 0.2), magnitude_std='inf', prob=0.1),
    dict(type='Solarize', thr=120, prob=0.2),
    dict(type='RandomFlip', prob=0.5),
]
neighbour = [color_jitter, grayscale]
train_pipeline = [
    dict(type='mmmask.LoadFrameWithNeighbours', color_type='grayscale'),
    dict(type='mmmask.MultiViewWithKeys', transforms=[view1, view2, neighbour, neighbour],
         num_views=[1, 1, 1, 1], sources=[None, None, 'img_prev', 'img_next']),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=8,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='mmmask.FrameSequenceDataset', data_root='data/dqn_replay/',
                 data_prefix=dict(img_path='frames'), ann_file='', frame_stack=3,
                 boundary='clamp', max_frames=100000, pipeline=train_pipeline))

# LARS (1-D parameters: no weight decay, no LARS scaling, as the official MoCo-v3 LARS)
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='LARS', lr=0.6 * batch_size / 256, momentum=0.9, weight_decay=1e-6),
    paramwise_cfg=dict(
        bias_decay_mult=0.0, norm_decay_mult=0.0,
        custom_keys={
            'bias': dict(decay_mult=0.0, lars_exclude=True),
            'ln': dict(decay_mult=0.0, lars_exclude=True),
            'projector.1': dict(decay_mult=0.0, lars_exclude=True),
            'projector.4': dict(decay_mult=0.0, lars_exclude=True),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=8, eta_min=0.0, by_epoch=True, begin=2, end=10,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1))
auto_scale_lr = dict(base_batch_size=512)
