# DACS + Masked Feature Modeling (MFM, Zhou et al., arXiv 2509.13801) on the toy UDA pair: the toy
# DACS config (configs/uda/dacs_fcn-r18_toy-uda-64x64.py) plus, on each target crop, the student's
# backbone features masked in feature space, rebuilt by a lightweight mmmask.MFMRebuilder and
# classified by the student's FCN head against the teacher's pseudo-labels (confidence-weighted),
# with weight lambda. The rebuilder is dropped at inference: the evaluated model is the same
# student as in the DACS config.
# ASSUMED (the paper's code is unreleased; see configs/mfm/README.md): only the level the FCN head
# reads (in_index=3, 256 channels, stride 8 -> 8x8 cells on 64x64 crops) is masked; mask ratio 0.5
# of 1x1-cell patches; learnable per-level mask token; 2 residual 3x3 convs (256 -> 64 -> 256
# channels, ~0.3M parameters, ~10% of the student); lambda = 1.
_base_ = ['../uda/dacs_fcn-r18_toy-uda-64x64.py']
model = dict(
    mfm=dict(
        rebuilder=dict(
            type='mmmask.MFMRebuilder',
            in_channels=[32, 64, 128, 256],
            levels=[3],
            mask_ratio=0.5,
            patch_size=1,
            mask_token='learned',
            num_convs=2,
            hidden_ratio=0.25),
        loss_weight=1.0,
        on='target'))
