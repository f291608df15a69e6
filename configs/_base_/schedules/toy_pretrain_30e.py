# Toy pretraining schedule: AdamW (MAE's betas/weight decay), 1-epoch warmup + cosine, 30 epochs
# of the 2000 toy images at batch 64 (~940 iterations).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=29, eta_min=1e-5, by_epoch=True, begin=1, end=30,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=30)
# Enough for the objectives whose toy probe gain shows by then (GMML, MTO, Hi-End-MAE, CMAE and
# MaskAlign use it); see toy_pretrain_60e.py for the longer one (MAE baseline, HPM).
