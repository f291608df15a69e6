# Single-task PolyMaX on the toy NYU scenes: semantic segmentation only (kMaX mask classification).
_base_ = ['./polymax_r18-toy_1xb8-2k_toy-nyu-multitask-64x64.py']
model = dict(heads=dict(depth=None, normal=None))
val_evaluator = [dict(type='mmseg.IoUMetric', iou_metrics=['mIoU'])]
test_evaluator = val_evaluator
