# Self-supervised pretraining on the built-in digit crops (data/toy/cls, labels unused by the
# objective), plus the labelled bank/query loaders of the frozen-feature probes
# (mmmask.KNNEvalHook: k-NN and a linear probe on the concatenated patch tokens, each also on the
# random-init backbone before training). Random-init features of a ViT sit near chance on these
# cluttered digits (k-NN on mean-pooled tokens ~10%): the linear probe on all tokens is the
# discriminative signal at toy budgets.
dataset_type = 'mmpretrain.CustomDataset'
data_root = 'data/toy/cls/'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor', mean=[127.5, 127.5, 127.5], std=[64.0, 64.0, 64.0],
    to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.5, 1.0)),
    dict(type='PackInputs'),
]
knn_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
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
         num_classes=10, k=20, temperature=0.07, pool='flatten', linear_probe=True)
]
