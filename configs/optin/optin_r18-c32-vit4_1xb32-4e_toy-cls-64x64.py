# OPTIN on the toy world: a hybrid ViT (ViT paper §3.1) — the toy "ImageNet" ResNet-18-c32
# (configs/quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py, frozen) gives a 4x4 layer3 map
# whose 16 cells, a class token and learned positions run through 4 standard mmpretrain ViT
# blocks (4 heads of 32, FFN 256). Plain patch ViTs stay at chance on the toy digits within CPU
# budgets, hence the CNN tokens. Only the ViT blocks and the head train (4 epochs).
#   python tools/train.py configs/quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py
#   python tools/train.py configs/optin/optin_r18-c32-vit4_1xb32-4e_toy-cls-64x64.py
#   python tools/analysis_tools/optin_prune.py \
#       configs/optin/optin_r18-c32-vit4_1xb32-4e_toy-cls-64x64.py \
#       work_dirs/optin_r18-c32-vit4_1xb32-4e_toy-cls-64x64/epoch_4.pth --flops-budget 0.6
# The `optin` dict holds the pruning settings the tool reads (command-line flags override them).
_base_ = ['../quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py']
model = dict(
    backbone=dict(out_indices=(2, ), frozen_stages=3, norm_eval=True,
                  init_cfg=dict(type='Pretrained', prefix='backbone.',
                                checkpoint='work_dirs/resnet18-c32_1xb32-10e_toy-cls-64x64/'
                                'epoch_10.pth')),
    neck=dict(_delete_=True, type='mmmask.OptinHybridViTNeck', in_channels=128, num_tokens=16,
              embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=256),
    head=dict(in_channels=128))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_epochs=4, val_interval=4)
default_hooks = dict(checkpoint=dict(interval=4, max_keep_ckpts=1))
# Toy deviation for CPU cost: FFN neurons scored in groups of 8 (every scoring forward re-runs the
# frozen ResNet), a calibration batch of 32.
optin = dict(
    flops_budget=0.6,  # kept fraction of the prunable (head + FFN neuron) MACs
    calib_batches=1, calib_batch_size=32,  # one calibration batch of training images
    lambda_=10., temperature=4., md_samples=768, md_variant='token',
    head_metric_decay=0.5, neuron_metric_decay=1.0, head_final_decay=0.5,
    neuron_final_decay=0.5, include_final=True, neuron_group=8, seed=0)
