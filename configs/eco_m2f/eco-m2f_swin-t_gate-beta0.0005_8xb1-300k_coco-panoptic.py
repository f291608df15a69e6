# ECO-M2F step C on COCO panoptic (official configs/ecom2f_swin_tiny_beta_0.0005_coco.yaml): only
# the gate of the step-A model trains, on the derived dataset of step B, with the soft targets
# softmax(q_k - beta*k). AdamW lr 1e-4, wd 0.05, grad clip 0.01, 8 images per iteration (8 GPUs x
# 1), 300k iterations at a constant learning rate (the yaml's milestones lie beyond its end), LSJ
# augmentation as the parent. Validation and test use the gated per-image exits.
# Paper: 52.06 PQ at 202.4 GFLOPs (Swin-T, COCO val).
_base_ = ['./eco-m2f_swin-t_8xb2-lsj-50e_coco-panoptic.py']
beta = 0.0005
step_a = 'work_dirs/eco-m2f_swin-t_8xb2-lsj-50e_coco-panoptic/'
load_from = step_a + 'iter_368750.pth'  # step A (or a converted official checkpoint)
utilities_file = step_a + 'derived_train.json'  # step B
model = dict(
    train_gate_only=True,
    panoptic_head=dict(
        gate_loss=dict(beta=beta, loss_weight=1.0),
        pixel_decoder=dict(exit_mode='gated')))
image_size = (1024, 1024)
backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True, backend_args=backend_args),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args=backend_args),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=image_size, crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
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
max_iters = 300000
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=10),
    dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=10, end=max_iters),
]
interval = 5000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=interval,
                 _delete_=True)
default_hooks = dict(checkpoint=dict(interval=interval))
auto_scale_lr = dict(enable=False, base_batch_size=8)
find_unused_parameters = False
