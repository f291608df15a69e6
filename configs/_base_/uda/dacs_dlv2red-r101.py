# DACS (Tranheden et al., WACV 2021) with DeepLabV2 (ResNet-101, atrous rates 6 and 12),
# in the form DAFormer re-trains it as its UDA baseline (lhoyer/DAFormer experiments.py, id 1:
# configs/_base_/uda/dacs.py + 'dlv2red' + 'r101v1c'): EMA teacher alpha 0.99, pseudo-label
# confidence threshold 0.968, ClassMix + colour jitter (0.2, p 0.2) + blur; no rare class
# sampling, no ImageNet feature distance, no pseudo-label bands. AdamW 6e-5 (head x10), linear
# warmup 1.5k + poly decay, 40k iterations, 2 source + 2 target 512x512 crops.
_base_ = [
    '../models/deeplabv2red_r101.py',
    '../seg_runtime.py',
    '../schedules/daformer_adamw_poly10warm_40k.py',
]
student = {{_base_.model}}
data_preprocessor = dict(type='mmmask.UDASegDataPreProcessor')
model = dict(
    _delete_=True,
    type='mmmask.DACS',
    model=student,
    alpha=0.99,
    pseudo_threshold=0.968,
    mix='class',
    blur=True,
    color_jitter_strength=0.2,
    color_jitter_probability=0.2)
# the teacher stays out of the optimizer; only the head gets lr x10 (DAFormer's pmult; the
# pos_block/norm decay rules of the schedule are for MiT encoders)
optim_wrapper = dict(
    constructor='mmmask.UDAOptimWrapperConstructor',
    paramwise_cfg=dict(custom_keys=dict(_delete_=True, head=dict(lr_mult=10.0))))
