# PEM R50 panoptic segmentation on ADE20K (official pem_R50_bs32_160k, panoptic): mmdet's
# Mask2Former detector with the PEM head; 640x640 crops, 160k iterations, 8 GPUs x 4 images,
# lr 4e-4 cosine. Paper: 38.5 PQ, 35.7 FPS, 47 GFLOPs.
_base_ = [
    '../_base_/models/pem_r50_panoptic.py', '../_base_/datasets/ade20k_panoptic.py',
    '../_base_/det_runtime.py', '../_base_/schedules/pem_adamw_cosine_160k.py'
]
default_hooks = dict(visualization=dict(type='DetVisualizationHook'))
log_processor = dict(by_epoch=False)
