# PolyMaX ConvNeXt-L, NYUD-v2 40-class semantic segmentation (paper: 58.08 mIoU).
_base_ = ['./polymax_convnext-l_8xb2-40k_nyu-multitask-448x576.py']
model = dict(heads=dict(depth=None, normal=None))
val_evaluator = [dict(type='mmseg.IoUMetric', iou_metrics=['mIoU'])]
test_evaluator = val_evaluator
