# Two augmented views of the built-in digit crops (32 px) for contrastive / joint-embedding
# pretraining (SimCLR-style augmentation scaled to 32 px; no horizontal flip: a mirrored digit is
# another glyph), plus the labelled bank/query loaders of the frozen-feature probes
# (mmmask.KNNEvalHook: k-NN and a linear probe on globally pooled features, each also on the
# random-init backbone before training).
dataset_type = 'mmpretrain.CustomDataset'
data_root = 'data/toy/cls/'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor', mean=[127.5, 127.5, 127.5], std=[64.0, 64.0, 64.0],
    to_rgb=True)
view_pipeline = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.3, 1.0), backend='pillow'),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4,
                          hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
knn_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='mmmask.ToyData', world='cls', reader=dataset_type, data_root=data_root,
                 data_prefix='train', pipeline=train_pipeline))

knn_bank = dict(
    batch_size=250, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='mmmask.ToyData', world='cls', reader=dataset_type, data_root=data_root,
                 data_prefix='train', pipeline=knn_pipeline))
knn_query = dict(
    batch_size=250, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='mmmask.ToyData', world='cls', reader=dataset_type, data_root=data_root,
                 data_prefix='val', pipeline=knn_pipeline))
custom_hooks = [
    dict(type='mmmask.KNNEvalHook', train_dataloader=knn_bank, val_dataloader=knn_query,
         num_classes=10, k=20, temperature=0.07, pool='mean', linear_probe=True)
]
