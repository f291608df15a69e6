# ViT-P classifier schedule (train.py of the official code): SGD momentum 0.9, no weight decay,
# lr 9e-3 for the network and 1e-2 for the point embedding, cosine to 0 without warmup, fp16.
# Iteration-based: 60 "epochs" of OFFICIAL_EPOCH_LENGTH iterations (ADE20K 320, Cityscapes 345).
epoch_length = 320
max_iters = 60 * epoch_length
base_lr = 9e-3
optim_wrapper = dict(
    type='AmpOptimWrapper',  # mmmask turns it into bf16 autocast on CPU
    optimizer=dict(type='SGD', lr=base_lr, momentum=0.9, weight_decay=0.0),
    paramwise_cfg=dict(custom_keys={'encoder.point_embed': dict(lr_mult=1e-2 / base_lr)}))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_iters, eta_min=0.0, by_epoch=False, begin=0,
         end=max_iters)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=3 * epoch_length)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=3 * epoch_length,
                    max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
