# Toy counterpart of topk-resnet50_8xb32-ft-10e_in1k.py: fine-tune the toy "ImageNet" ResNet-18-c32
# (configs/quickstart, pass its checkpoint with --cfg-options load_from=...) with Top-K sparsity
# (k=0.2 after layer3 and layer4) for 3 epochs, AdamW lr 5e-4.
#   python tools/train.py configs/disrt/topk-resnet18-c32_1xb32-3e_toy-cls-64x64.py \
#       --cfg-options load_from=work_dirs/resnet18-c32_1xb32-10e_toy-cls-64x64/epoch_10.pth
_base_ = ['../quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmask.WithTopKSparsity',
        backbone=dict(type='mmpretrain.ResNet', depth=18, stem_channels=32, base_channels=32,
                      out_indices=(3, ), style='pytorch'),
        k=0.2,
        after=['layer3', 'layer4']))
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=5e-4, weight_decay=0.05))
param_scheduler = [dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=0)]
train_cfg = dict(max_epochs=3, val_interval=3)
