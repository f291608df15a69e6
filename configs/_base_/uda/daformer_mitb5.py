# DAFormer (Hoyer et al., CVPR 2022): MiT-B5 + DAFormer decoder (context-aware
# fusion with a depthwise-separable ASPP), trained with DAFormer's DACS variant (lhoyer/DAFormer
# experiments.py ids 6/7, 'dacs_a999_fdthings' + rcs 0.01 + plcrop): EMA teacher alpha 0.999,
# threshold 0.968, pseudo-label weight 0 in the top 15 / bottom 120 rows, ClassMix + colour
# jitter + blur, rare class sampling (T 0.01, 3000 px, crop ratio 0.5; switched on by the dataset
# configs, which know the statistics file), ImageNet feature distance
# 0.005 on the thing classes (traffic light/sign, person .. bicycle; cells >= 75% thing).
# AdamW 6e-5, head x10, no decay on norm/pos_block, warmup 1.5k + poly, 40k iterations.
_base_ = [
    '../models/daformer_sepaspp_mitb5.py',
    '../seg_runtime.py',
    '../schedules/daformer_adamw_poly10warm_40k.py',
]
student = {{_base_.model}}
data_preprocessor = dict(type='mmmask.UDASegDataPreProcessor')
model = dict(
    _delete_=True,
    type='mmmask.DACS',
    model=student,
    alpha=0.999,
    pseudo_threshold=0.968,
    psweight_ignore_top=15,
    psweight_ignore_bottom=120,
    imnet_feature_dist_lambda=0.005,
    imnet_feature_dist_classes=[6, 7, 11, 12, 13, 14, 15, 16, 17, 18],
    imnet_feature_dist_scale_min_ratio=0.75,
    mix='class',
    blur=True,
    color_jitter_strength=0.2,
    color_jitter_probability=0.2)
optim_wrapper = dict(constructor='mmmask.UDAOptimWrapperConstructor')
