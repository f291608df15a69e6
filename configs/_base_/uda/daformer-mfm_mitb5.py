# DAFormer + Masked Feature Modeling (Zhou et al., arXiv 2509.13801):
# configs/_base_/uda/daformer_mitb5.py plus the MFM loss on each target crop.
# ASSUMED (code unreleased, see README.md): all four MiT-B5 levels (the DAFormer decoder reads
# them all) are masked, ratio 0.5 of patches covering 32x32 px (8/4/2/1 cells at strides
# 4/8/16/32), learned mask tokens, 2 residual 3x3 convs per level with C/4 hidden channels,
# lambda 1, rebuilder lr x10 as the randomly initialised head.
_base_ = ['./daformer_mitb5.py']
model = dict(
    mfm=dict(
        rebuilder=dict(
            type='mmmask.MFMRebuilder',
            in_channels=[64, 128, 320, 512],
            levels=None,
            mask_ratio=0.5,
            patch_size=[8, 4, 2, 1],
            mask_token='learned',
            num_convs=2,
            hidden_ratio=0.25),
        loss_weight=1.0,
        on='target'))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=dict(mfm_rebuilder=dict(lr_mult=10.0))))
