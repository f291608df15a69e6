# ECO-M2F step C on Cityscapes panoptic (official ecom2f_swin_tiny_beta_0.003_cityscapes.yaml):
# only the gate trains, on the derived dataset of step B, with soft targets softmax(q_k - beta*k);
# AdamW lr 1e-4, wd 0.05, grad clip 0.01, 8 images per iteration, 50k iterations, poly decay,
# the parent's augmentation. Paper: 64.18 PQ / 80.49 mIoU at 507.5 GFLOPs (1024x2048).
_base_ = ['./eco-m2f_swin-t_8xb2-90k_cityscapes-panoptic-512x1024.py']
beta = 0.003
step_a = 'work_dirs/eco-m2f_swin-t_8xb2-90k_cityscapes-panoptic-512x1024/'
load_from = step_a + 'iter_90000.pth'
utilities_file = step_a + 'derived_train.json'
model = dict(
    train_gate_only=True,
    panoptic_head=dict(
        gate_loss=dict(beta=beta, loss_weight=1.0),
        pixel_decoder=dict(exit_mode='gated')))
train_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(512, 1024), crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='PhotoMetricDistortion'),
    dict(type='mmmask.LoadExitUtilities', utilities_file=utilities_file, key='img_id'),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                    'flip_direction', 'exit_utilities')),
]
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
    clip_grad=dict(max_norm=0.01, norm_type=2))
max_iters = 50000
param_scheduler = dict(_delete_=True, type='PolyLR', eta_min=0, power=0.9, begin=0,
                       end=max_iters, by_epoch=False)
train_cfg = dict(max_iters=max_iters, val_interval=2000)
default_hooks = dict(checkpoint=dict(interval=2000))
auto_scale_lr = dict(enable=False, base_batch_size=8)
find_unused_parameters = False
