# PolyMaX ConvNeXt-L, NYUD-v2 surface normals (paper: mean 13.09 deg, RMSE 20.4,
# 65.66 / 82.28 / 87.83 % within 11.25 / 22.5 / 30 deg).
_base_ = ['./polymax_convnext-l_8xb2-40k_nyu-multitask-448x576.py']
model = dict(heads=dict(semantic=None, depth=None))
val_evaluator = [dict(type='mmmask.SurfaceNormalMetric')]
test_evaluator = val_evaluator
