# Built-in frame sequences (8 frames of 64x64, 1-2 digits moving and bouncing) for temporal
# objectives: data/toy/seq/{train,val}/<clip>/<t>.png, with {train,val}.json listing clips, frame
# order, digit labels and boxes. As an image set, the frames are read by mmpretrain's
# CustomDataset (unlabelled); temporal objectives read the clip lists from the json files.
dataset_type = 'mmpretrain.CustomDataset'
data_root = 'data/toy/seq/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='mmmask.ToyData',
        world='seq',
        reader=dataset_type,
        data_root=data_root,
        data_prefix='train',
        with_label=False,
        pipeline=train_pipeline))
