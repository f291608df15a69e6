# NYUD-v2 multi-task (NYUD-MT: the 795 train / 654 test labelled frames with all three labels),
# read by mmmask.NYUv2MultiTaskDataset. Convert the NYUD-MT release (MTI-Net/ATRC/InvPT) with
#   python tools/dataset_converters/nyud_mt.py NYUD_MT/ -o data/nyu
# Its frames are already NYU's 425x560 border crop, so the depth metric uses no further crop; for
# full 480x640 frames set crop_type='nyu_crop' (the Eigen crop) in the DepthMetric below.
#   data/nyu/images/{train,test}/<stem>.jpg
#   data/nyu/semantic40/{train,test}/<stem>.png   uint8 NYU-40, 0 = unlabelled (reduce_zero_label)
#   data/nyu/annotations/{train,test}/<stem>.png  uint16 depth in mm (0 = invalid)
#   data/nyu/normals/{train,test}/<stem>.png      RGB (n+1)/2*255 camera-frame normals
#                                                  (x right, y down, z forward), (0,0,0) invalid
# [ASSUMPTION] Train augmentation = RandomFlipDense (negates normal x) + a 448x576 random crop
# (a translation: it keeps the metric-depth / focal-length relation, unlike random scaling, which
# is left out for depth and normals). The PolyMaX paper's exact NYU crop is not known to us; use
# crop_size=(480, 640) (a no-op) to train on full frames instead (on 425x560 NYUD-MT frames the
# 448x576 crop is the full frame already). Test: full frames, no aug.
# Upstream types carry their scope ('mmseg.LoadAnnotations', not mmcv's) so that the pipelines
# and evaluators resolve the same under any default_scope.
dataset_type = 'mmmask.NYUv2MultiTaskDataset'
data_root = 'data/nyu/'
crop_size = (448, 576)
meta_keys = ('img_path', 'seg_map_path', 'depth_map_path', 'normal_map_path', 'ori_shape',
             'img_shape', 'pad_shape', 'scale_factor', 'flip', 'flip_direction',
             'reduce_zero_label')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmseg.LoadAnnotations'),
    dict(type='mmseg.LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='mmmask.LoadNormalAnnotation'),
    dict(type='mmmask.RandomFlipDense', prob=0.5),
    dict(type='mmseg.RandomCrop', crop_size=crop_size),
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
        type=dataset_type,
        data_root=data_root,
        reduce_zero_label=True,
        data_prefix=dict(
            img_path='images/train',
            seg_map_path='semantic40/train',
            depth_map_path='annotations/train',
            normal_map_path='normals/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        reduce_zero_label=True,
        test_mode=True,
        data_prefix=dict(
            img_path='images/test',
            seg_map_path='semantic40/test',
            depth_map_path='annotations/test',
            normal_map_path='normals/test'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='mmseg.IoUMetric', iou_metrics=['mIoU']),
    dict(type='mmseg.DepthMetric', min_depth_eval=1e-3, max_depth_eval=10.0, crop_type=None),
    dict(type='mmmask.SurfaceNormalMetric'),
]
test_evaluator = val_evaluator
