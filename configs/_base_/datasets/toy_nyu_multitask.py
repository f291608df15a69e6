# Built-in multi-task NYU-Depth-v2 (semantic + depth + surface normals) on the toy world
# data/toy/nyu (64x64): semantic/ uint8 with the 12 toy classes (0-based, 255 unlabelled, so
# reduce_zero_label=False), annotations/ uint16 depth in mm (max 10 m), normals/ RGB (n+1)/2*255
# camera-frame normals (all-zero = invalid). Read by mmmask.NYUv2MultiTaskDataset.
# No flip here: a horizontal flip mirrors the toy digits (they are not flip-invariant classes); the
# real-data config (nyu_multitask.py) flips with RandomFlipDense, which also negates normal x.
# The evaluators can be used together (names do not collide) or each alone.
# Upstream types carry their scope ('mmseg.LoadAnnotations', not mmcv's) so that the pipelines
# and evaluators resolve the same under any default_scope.
dataset_type = 'mmmask.NYUv2MultiTaskDataset'
data_root = 'data/toy/nyu/'
metainfo = dict(
    classes=('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine',
             'sky', 'ground'),
    palette=[(220, 20, 60), (119, 11, 32), (0, 0, 142), (0, 0, 230), (106, 0, 228),
             (0, 60, 100), (0, 80, 100), (0, 0, 70), (0, 0, 192), (250, 170, 30),
             (70, 130, 180), (152, 251, 152)])
meta_keys = ('img_path', 'seg_map_path', 'depth_map_path', 'normal_map_path', 'ori_shape',
             'img_shape', 'pad_shape', 'scale_factor', 'flip', 'flip_direction',
             'reduce_zero_label')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmseg.LoadAnnotations'),
    dict(type='mmseg.LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='mmmask.LoadNormalAnnotation'),
    dict(type='mmmask.PackDenseInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmseg.LoadAnnotations'),
    dict(type='mmseg.LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='mmmask.LoadNormalAnnotation'),
    dict(type='mmmask.PackDenseInputs', meta_keys=meta_keys),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='mmmask.ToyData',
        world='nyu',
        reader=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        reduce_zero_label=False,
        data_prefix=dict(
            img_path='images/train',
            seg_map_path='semantic/train',
            depth_map_path='annotations/train',
            normal_map_path='normals/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='mmmask.ToyData',
        world='nyu',
        reader=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        reduce_zero_label=False,
        test_mode=True,
        data_prefix=dict(
            img_path='images/test',
            seg_map_path='semantic/test',
            depth_map_path='annotations/test',
            normal_map_path='normals/test'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='mmseg.IoUMetric', iou_metrics=['mIoU']),
    dict(type='mmseg.DepthMetric', min_depth_eval=1e-3, max_depth_eval=10.0),
    dict(type='mmmask.SurfaceNormalMetric'),
]
test_evaluator = val_evaluator
