# Single-task PolyMaX on the toy NYU scenes: monocular depth as a mixture of per-cluster depths.
_base_ = ['./polymax_r18-toy_1xb8-2k_toy-nyu-multitask-64x64.py']
model = dict(heads=dict(semantic=None, normal=None))
val_evaluator = [dict(type='mmseg.DepthMetric', min_depth_eval=1e-3, max_depth_eval=10.0)]
test_evaluator = val_evaluator
