# Linear probe on the built-in digits (frozen backbone, flattened patch tokens; mmpretrain
# ImageClassifier) of the toy ViT pretrained by tov-vicreg_vit-tiny-p8_1xb64-30e_toy-pretrain.py.
#   python tools/train.py configs/tov_vicreg/tov-vicreg_vit-tiny-p8_linear-toy-cls.py
_base_ = '../_base_/benchmarks/vit-tiny-p8_linear-toy-cls.py'
checkpoint = 'work_dirs/tov-vicreg_vit-tiny-p8_1xb64-30e_toy-pretrain/epoch_30.pth'
model = dict(backbone=dict(
    fixed_pos_embed=False, patch_cfg=dict(padding=0),
    init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')))
