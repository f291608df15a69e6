# PolyMaX on the built-in toy NYU scenes (64x64, CPU): one model, three outputs — 12-class semantic
# segmentation (kMaX mask classification), metric depth (mixture of per-cluster depths) and surface
# normals (re-normalised mixture of per-cluster unit normals) — trained from scratch.
_base_ = [
    '../_base_/seg_runtime.py', '../_base_/datasets/toy_nyu_multitask.py',
    '../_base_/schedules/toy_2k.py', '../_base_/models/polymax_r18-toy.py'
]
# kMaX's optimiser shape (no decay on norms/biases/centres/position tables), toy learning rate
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), eps=1e-7, weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={'rpe': dict(decay_mult=0.0), 'cluster_centers': dict(decay_mult=0.0)},
        norm_decay_mult=0.0, bias_decay_mult=0.0))
default_hooks = dict(visualization=dict(type='mmseg.SegVisualizationHook', draw=False))
