# Texture-only control of the toy DiSRT testbench: the toy ResNet-18-c32 of configs/quickstart,
# with the same weights (its checkpoint loads unchanged), run by mmmask.PatchLocal on each 16x16
# patch of the 64x64 input on its own and average-pooled per patch: a bag of local features.
# Its pooled features cannot change when the 4x4 grid of patches is rearranged, so its DiSRT
# score at grid 4 is chance (33.3 %) exactly, while the whole-image model scores ~60 %.
#   python tools/analysis_tools/disrt_testbench.py \
#       configs/disrt/patch-local-resnet18-c32-p16_toy-cls-64x64.py CHECKPOINT
_base_ = ['../quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py']
custom_imports = dict(imports=['mmmask.evaluation.robustness'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmask.PatchLocal',
        backbone=dict(type='mmpretrain.ResNet', depth=18, stem_channels=32, base_channels=32,
                      out_indices=(3, ), style='pytorch'),
        patch_size=16))
