# PolyMaX ConvNeXt-L, NYUD-v2 monocular depth (paper: RMSE 0.250, AbsRel 0.067, d1 0.969), evaluated
# up to 10 m (NYUD-MT frames are already border-cropped; use crop_type='nyu_crop' on 480x640 frames).
_base_ = ['./polymax_convnext-l_8xb2-40k_nyu-multitask-448x576.py']
model = dict(heads=dict(semantic=None, normal=None))
val_evaluator = [
    dict(type='mmseg.DepthMetric', min_depth_eval=1e-3, max_depth_eval=10.0, crop_type=None)
]
test_evaluator = val_evaluator
