# Official GMM schedule (main.py + utils/scheduler.py): AdamW lr 1e-3, weight decay 0.05 on every
# parameter, 100 epochs of 3 passes each (see the dataset base), per-iteration linear warm-up
# from 1e-6 over 10 epochs, then cosine to 1e-6. Label smoothing 0.1 and CutMix/MixUp
# (alpha 1, applied to half of the batches, half of those CutMix) live in the model config.
_base_ = ['../../_base_/cls_runtime.py']
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=10, end=100,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=128)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=2,
                                     save_best='auto'))
