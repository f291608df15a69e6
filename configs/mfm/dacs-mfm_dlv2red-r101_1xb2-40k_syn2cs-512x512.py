# DACS with DeepLabV2 + Masked Feature Modeling on SYNTHIA -> Cityscapes:
# the recipe is configs/_base_/uda/dacs-mfm_dlv2red-r101.py.
_base_ = [
    '../_base_/uda/dacs-mfm_dlv2red-r101.py',
    '../_base_/datasets/uda_synthia_to_cityscapes_512x512.py',
]
custom_imports = dict(
    imports=['mmmask.datasets', 'mmmask.evaluation', 'mmmask.models'], allow_failed_imports=False)
