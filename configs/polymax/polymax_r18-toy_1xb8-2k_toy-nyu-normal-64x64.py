# Single-task PolyMaX on the toy NYU scenes: surface normals as a re-normalised mixture of
# per-cluster unit normals.
_base_ = ['./polymax_r18-toy_1xb8-2k_toy-nyu-multitask-64x64.py']
model = dict(heads=dict(semantic=None, depth=None))
val_evaluator = [dict(type='mmmask.SurfaceNormalMetric')]
test_evaluator = val_evaluator
