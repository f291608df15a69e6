# PolyMaX (WACV'24), ConvNeXt-L (ImageNet-22K -> 1K, 384 px), NYUD-v2: one model predicting 40-class
# semantic segmentation, metric depth and surface normals (shared backbone and kMaX pixel decoder,
# one k-means transformer decoder with 128 clusters per task). Batch 16 on 8 GPUs.
# The paper's schedule, crop and training sets could not be read: every such value here is an
# assumption listed in configs/polymax/README.md.
_base_ = [
    '../_base_/seg_runtime.py', '../_base_/datasets/nyu_multitask.py',
    '../_base_/schedules/polymax_adamw_poly_40k.py', '../_base_/models/polymax_convnext-l.py'
]
train_dataloader = dict(batch_size=2)
default_hooks = dict(visualization=dict(type='mmseg.SegVisualizationHook', draw=False))
# the learning rate above is set for 8 GPUs x 2 images
auto_scale_lr = dict(enable=False, base_batch_size=16)
