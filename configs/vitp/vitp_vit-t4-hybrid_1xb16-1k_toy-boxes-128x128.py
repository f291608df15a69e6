# Cheap labels: the toy ViT-P point classifier trained from *box* annotations only — each point
# is drawn uniformly inside the box of a sampled segment (boxes of the connected components of
# each class, as a detector's annotations would give) and takes the box's class, so points on
# background inside a digit's box get the digit's label. The paper's claim: the classifier
# tolerates such labels (it trains on Objects365 boxes and Cityscapes coarse masks).
_base_ = ['./vitp_vit-t4-hybrid_1xb16-1k_toy-points-128x128.py']
num_points = 96
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='mmmask.SegRandomResizedCrop', size=(128, 128), scale=(0.5, 1.0)),
    dict(type='mmmask.SegRandomRotate', degree=30),
    dict(type='mmmask.SampleSegmentPoints', num_points=num_points, label_source='box'),
    dict(type='mmmask.PackPointInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
