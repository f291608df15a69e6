# dSVA at toy scale against *self-supervised* toy teachers, the setting of the paper in miniature:
# the contrastive / joint-embedding teacher is the VICReg toy ViT and the MIM teacher the MAE toy
# ViT (both 128-d x 4 blocks, patch 8, 32 px; the images are resized to 32 px for them). Train the
# teachers first (a few CPU minutes each), then the generator:
#   python tools/train.py configs/tov_vicreg/vicreg_vit-tiny-p8_1xb64-30e_toy-pretrain.py
#   python tools/train.py configs/quickstart/mae_vit-tiny-p8_1xb64-60e_toy-pretrain.py
#   python tools/train.py configs/dsva/dsva_resnetgen-c16_vit-tiny-p8-ssl-teachers_1xb16-300it_toy-cls-64x64.py
# Our run (seed 0): black-box toy ResNet-18 76.2 -> 65.2 % (equal-norm noise 76.4 / 76.2); with the
# random teachers of the base config 71.0 % (README).
_base_ = ['./dsva_resnetgen-c16_vit-tiny-p8-x2_1xb16-300it_toy-cls-64x64.py']

toy_vit = dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512)
teacher_backbone = dict(type='mmpretrain.VisionTransformer', arch=toy_vit, img_size=32,
                        patch_size=8, out_type='raw', with_cls_token=True, final_norm=True)
model = dict(
    cl_teacher=dict(model=teacher_backbone,
                    pretrained='work_dirs/vicreg_vit-tiny-p8_1xb64-30e_toy-pretrain/epoch_30.pth',
                    pretrained_prefix='backbone.'),
    mim_teacher=dict(model=teacher_backbone,
                     pretrained='work_dirs/mae_vit-tiny-p8_1xb64-60e_toy-pretrain/epoch_60.pth',
                     pretrained_prefix='backbone.'))
