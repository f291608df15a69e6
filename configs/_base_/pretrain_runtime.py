# Runtime of mmmask's self-supervised pretraining configs (mmpretrain scope, no val loop: the
# k-NN probe hook of the dataset base reports `knn_top1` and `knn_init_top1`).
_base_ = './cls_runtime.py'
default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=20, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'))
log_processor = dict(window_size=10)
