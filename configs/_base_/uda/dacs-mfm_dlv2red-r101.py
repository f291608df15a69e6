# DACS + Masked Feature Modeling (Zhou et al., arXiv 2509.13801) with DeepLabV2:
# configs/_base_/uda/dacs_dlv2red-r101.py plus the MFM loss on each target crop.
# ASSUMED (code unreleased, see README.md): the classifier's input level (ResNet stage 4, 2048
# channels, stride 8) is masked, ratio 0.5 of 4x4-cell (32x32 px) patches, learned mask token,
# 2 residual 3x3 convs 2048 -> 256 -> 2048 (training only), lambda 1, rebuilder lr x10 as the
# randomly initialised head.
_base_ = ['./dacs_dlv2red-r101.py']
model = dict(
    mfm=dict(
        rebuilder=dict(
            type='mmmask.MFMRebuilder',
            in_channels=[256, 512, 1024, 2048],
            levels=[3],
            mask_ratio=0.5,
            patch_size=4,
            mask_token='learned',
            num_convs=2,
            hidden_ratio=0.125),
        loss_weight=1.0,
        on='target'))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=dict(mfm_rebuilder=dict(lr_mult=10.0))))
