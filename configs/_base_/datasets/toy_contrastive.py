# Two augmented views of the built-in digit crops (32 px) for contrastive / joint-embedding
# pretraining (SimCLR-style augmentation scaled to 32 px; no horizontal flip: a mirrored digit is
# another glyph), plus the labelled bank/query loaders of the frozen-feature probes
# (mmmask.KNNEvalHook: k-NN and a linear probe on globally pooled features, each also on the
# random-init backbone before training).
_base_ = './toy_pretrain.py'  # data root, preprocessor, probe loaders and KNNEvalHook
# The digits' colour is random per image and is an instance-discrimination shortcut: with
# SimCLR-strength colour jitter (hue 0.1, grayscale 0.2, crops down to 30 %) a k-NN probe on pooled
# features stays at chance for hundreds of iterations (SimCLR R18 310 it: 14.2 -> 13.8). Hue is
# jittered fully, grayscale p 0.5 and crops keep >= half of the image (same run: 14.2 -> 19.6).
view_pipeline = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.5, 1.0), backend='pillow'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4, hue=0.5),
    dict(type='RandomGrayscale', prob=0.5, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(drop_last=True, dataset=dict(pipeline=train_pipeline))
# globally pooled features for the probes (CNN feature maps / all tokens averaged)
custom_hooks = [
    dict(type='mmmask.KNNEvalHook', train_dataloader={{_base_.knn_bank}},
         val_dataloader={{_base_.knn_query}}, num_classes=10, k=20, temperature=0.07,
         pool='mean', linear_probe=True)
]
