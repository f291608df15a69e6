# GMM-ViT model of the paper (official `python main.py --model vit --is_GMM`): the 2.7M 'vit' model
# (32 px, patch 4, D 192, 9 layers, 12 heads of 16, MLP ratio 2, K = 5 Gaussians per head and
# layer, one stochastic-depth rate 0.1 for every layer), no CLS token, mean pooling -> LayerNorm ->
# Linear (xavier-normal, like the official init), label smoothing 0.1, CutMix/MixUp.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='mmmask.GMMViT', arch='vit', img_size=32, patch_size=4, mask_type='gmm',
                  num_kernels=5, drop_path_rate=0.1),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=192,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='Xavier', layer='Linear', distribution='normal')),
    # official: with probability 0.5 a mix, then CutMix or MixUp with equal chance (alpha 1)
    train_cfg=dict(augments=[dict(type='Mixup', alpha=1.0), dict(type='CutMix', alpha=1.0)],
                   probs=[0.25, 0.25]))
