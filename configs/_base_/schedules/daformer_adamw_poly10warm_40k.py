# DAFormer's optimisation: AdamW (lr 6e-5, betas (0.9, 0.999), weight decay 0.01), decode head
# lr x10, no weight decay on 'pos_block' / 'norm' parameters (substring match, as DAFormer's
# custom_keys; 'head' wins over 'norm' for head parameters); 40k iterations; linear warmup over
# 1500 iterations from 1e-6 x lr, multiplied with a linear ("poly", power 1) decay to 0 that runs
# from iteration 0 — mmcv 1.x's `policy='poly', warmup='linear'`, which mmengine reproduces by
# running both schedulers from iteration 0 (they compose multiplicatively). Evaluation every 4000
# iterations, one checkpoint at the end.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-05, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys=dict(
            head=dict(lr_mult=10.0),
            pos_block=dict(decay_mult=0.0),
            norm=dict(decay_mult=0.0))))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=40000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=40000, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'))
