# ECO-M2F step C on the toy scenes: train only the gate of the step-A toy model on the derived
# dataset (step B) with the utility u_k = q_k - beta*k. Everything else is frozen; validation uses
# the gated (per-image) exits. Run steps A and B first (see README.md), or pass other paths:
#   --cfg-options load_from=A.pth train_dataloader.dataset.pipeline.2.utilities_file=B.json
_base_ = ['./eco-m2f_r18-c32_1xb4-2k_toy-panoptic-64x64.py']
beta = 0.05
step_a = 'work_dirs/eco-m2f_r18-c32_1xb4-2k_toy-panoptic-64x64/'
load_from = step_a + 'iter_2000.pth'
utilities_file = step_a + 'derived_train.json'
model = dict(
    train_gate_only=True,
    panoptic_head=dict(
        gate_loss=dict(beta=beta, loss_weight=1.0),
        pixel_decoder=dict(exit_mode='gated')))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='mmmask.LoadExitUtilities', utilities_file=utilities_file, key='img_id'),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                    'flip_direction', 'exit_utilities')),
]
train_dataloader = dict(batch_size=8, dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-2, betas=(0.9, 0.999), weight_decay=0.0))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=300)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=300, val_interval=300)
default_hooks = dict(checkpoint=dict(interval=300))
