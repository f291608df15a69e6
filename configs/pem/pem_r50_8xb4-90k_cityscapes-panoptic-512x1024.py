# PEM R50 panoptic segmentation on Cityscapes (official pem_R50_bs32_90k, panoptic): 512x1024
# crops, 90k iterations, 8 GPUs x 4 images, lr 7e-4 cosine to 0, SyncBN backbone.
# Paper: 61.1 PQ, 13.8 FPS, 237 GFLOPs.
_base_ = [
    '../_base_/models/pem_r50_panoptic.py', '../_base_/datasets/cityscapes_panoptic.py',
    '../_base_/det_runtime.py', '../_base_/schedules/pem_adamw_cosine_160k.py'
]
num_things_classes, num_stuff_classes = 8, 11
num_classes = num_things_classes + num_stuff_classes
model = dict(
    backbone=dict(norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=False),
    panoptic_head=dict(num_things_classes=num_things_classes,
                       num_stuff_classes=num_stuff_classes,
                       loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes,
                              num_stuff_classes=num_stuff_classes))
optim_wrapper = dict(optimizer=dict(lr=7e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=90000, eta_min=0.0, begin=0, end=90000, by_epoch=False)
]
train_cfg = dict(max_iters=90000)
default_hooks = dict(visualization=dict(type='DetVisualizationHook'))
log_processor = dict(by_epoch=False)
