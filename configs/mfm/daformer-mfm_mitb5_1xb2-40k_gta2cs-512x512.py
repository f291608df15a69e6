# DAFormer (MiT-B5) + Masked Feature Modeling on GTA5 -> Cityscapes:
# the recipe is configs/_base_/uda/daformer-mfm_mitb5.py.
# Rare class sampling reads the
# GTA class statistics (written by tools/dataset_converters/gta.py).
_base_ = [
    '../_base_/uda/daformer-mfm_mitb5.py',
    '../_base_/datasets/uda_gta_to_cityscapes_512x512.py',
]
custom_imports = dict(
    imports=['mmmask.datasets', 'mmmask.evaluation', 'mmmask.models'], allow_failed_imports=False)
train_dataloader = dict(dataset=dict(rare_class_sampling={{_base_.rcs_cfg}}))
