# PolyMaX schedule on NYUD-v2 (ASSUMED; the paper's schedule could not be read, see
# configs/polymax/README.md): kMaX-DeepLab's optimiser shape — AdamW with legacy-Keras eps 1e-7,
# weight decay 0.05 except on norms, biases, cluster centres, relative-position tables and
# ConvNeXt layer scales; backbone lr x0.1; linear warmup then poly(0.9) decay to 0; AMP; no
# gradient clipping — with kMaX's lr 5e-4 @ batch 64 scaled to batch 16, over 40k iterations.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=1.25e-4, betas=(0.9, 0.999), eps=1e-7, weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.1),
            'rpe': dict(decay_mult=0.0),
            'cluster_centers': dict(decay_mult=0.0),
            '.gamma': dict(decay_mult=0.0),
        },
        norm_decay_mult=0.0,
        bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=2000),
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=2000, end=40000, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4000, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'))
