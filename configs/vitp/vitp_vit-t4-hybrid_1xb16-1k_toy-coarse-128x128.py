# Cheap labels, coarse kind: the toy ViT-P point classifier trained from *coarse* masks, as the
# official Cityscapes classifier trains on the ~20k gtCoarse images. The fine toy maps are
# coarsened on the fly (every region eroded by 2 pixels at 128x128, boundaries become "ignore",
# like the polygons of gtCoarse), so points are only drawn well inside the objects.
_base_ = ['./vitp_vit-t4-hybrid_1xb16-1k_toy-points-128x128.py']
num_points = 96
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='mmmask.SegRandomResizedCrop', size=(128, 128), scale=(0.5, 1.0)),
    dict(type='mmmask.SegRandomRotate', degree=30),
    dict(type='mmmask.CoarsenSegMap', erode_px=2),
    dict(type='mmmask.SampleSegmentPoints', num_points=num_points),
    dict(type='mmmask.PackPointInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
