# Step-time / learning baseline of TOV-VICReg: mmpretrain's BarlowTwins (the closest shipped
# joint-embedding objective: redundancy reduction, no negatives, no momentum encoder) with the same
# toy ViT (cls output), a 512-512-512 projector and two 32-px views of the same toy clip frames.
#   python tools/analysis_tools/benchmark_selfsup.py \
#       configs/tov_vicreg/tov-vicreg_vit-tiny-p8_1xb64-30e_toy-pretrain.py@configs/tov_vicreg/barlowtwins_vit-tiny-p8_1xb64-30e_toy-pretrain.py
_base_ = ['./tov-vicreg_vit-tiny-p8_1xb64-30e_toy-pretrain.py']
model = dict(
    _delete_=True,
    type='BarlowTwins',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone={{_base_.model.backbone}},
    neck=dict(type='NonLinearNeck', in_channels=128, hid_channels=512, out_channels=512,
              num_layers=3, with_last_bn=False, with_last_bn_affine=False, with_avg_pool=False),
    head=dict(type='LatentCrossCorrelationHead', in_channels=512,
              loss=dict(type='CrossCorrelationLoss')))
train_pipeline = [
    dict(type='mmmask.LoadFrameWithNeighbours', with_neighbours=False),
    dict(type='MultiView', num_views=2, transforms=[{{_base_.anchor_view}}]),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
