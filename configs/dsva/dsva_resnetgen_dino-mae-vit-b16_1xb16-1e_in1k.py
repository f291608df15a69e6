# dSVA (ICCV 2025, arXiv 2506.21046) on ImageNet-1k: the released-size ResNet generator (ngf 64,
# 6 residual blocks, as the generator published with dSVA) trained against frozen DINO ViT-B/16
# (contrastive teacher) and MAE ViT-B/16 (masked-image-modelling teacher), 224 px, L-inf 10/255.
#   python tools/train.py configs/dsva/dsva_resnetgen_dino-mae-vit-b16_1xb16-1e_in1k.py
#   python tools/analysis_tools/dsva_attack.py configs/dsva/dsva_resnetgen_dino-mae-vit-b16_1xb16-1e_in1k.py \
#       work_dirs/dsva_resnetgen_dino-mae-vit-b16_1xb16-1e_in1k/epoch_1.pth \
#       --victim <mmpretrain resnet50 config> <its checkpoint> --victim <vit/swin/...> ...
# Teacher weights are the official releases (timm key layout, converted on load):
#   DINO  https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth
#   MAE   https://dl.fbaipublicfiles.com/mae/pretrain/mae_pretrain_vit_base.pth
# ASSUMPTIONS (the paper's training section / code were not available; see README): layers
# (DINO: blocks 6 and 12 + last-block CLS attention; MAE: blocks 6 and 12 + last-block CLS
# attention), equal loss weights, the BIA/CDA generator recipe (Adam 2e-4, betas (0.5, 0.999),
# batch 16, 1 epoch, eps 10/255 — the first author's torchattack default for generative attacks).
_base_ = ['../_base_/cls_runtime.py']

vit_b16 = dict(type='mmpretrain.VisionTransformer', arch='b', img_size=224, patch_size=16,
               out_type='raw', with_cls_token=True, final_norm=True)
imagenet_mean, imagenet_std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
# the generator works on [0, 1] RGB images: the loader's uint8 BGR images / 255, channels flipped
data_preprocessor = dict(type='mmpretrain.ClsDataPreprocessor', mean=[0., 0., 0.],
                         std=[255., 255., 255.], to_rgb=True)
model = dict(
    type='mmmask.DSVAAttack',
    data_preprocessor=data_preprocessor,
    generator=dict(type='mmmask.DSVAResNetGenerator', ngf=64, num_blocks=6),
    cl_teacher=dict(
        model=vit_b16,
        feature_layers=['layers.5', 'layers.11'],
        attention_layers=['layers.11.attn'],
        mean=imagenet_mean, std=imagenet_std,
        pretrained='checkpoints/dino_vitbase16_pretrain.pth', pretrained_format='timm'),
    mim_teacher=dict(
        model=vit_b16,
        feature_layers=['layers.5', 'layers.11'],
        attention_layers=['layers.11.attn'],
        mean=imagenet_mean, std=imagenet_std,
        pretrained='checkpoints/mae_pretrain_vit_base.pth', pretrained_format='timm'),
    eps=10 / 255,
    cl_weight=1.0, mim_weight=1.0, attn_weight=1.0)

dataset_type = 'mmpretrain.ImageNet'
data_root = 'data/imagenet'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
test_pipeline = train_pipeline
train_dataloader = dict(
    batch_size=16, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline))
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = test_cfg = test_evaluator = None
# transfer evaluation set of tools/analysis_tools/dsva_attack.py (use --num-images for the
# 5000-image subsets common in transfer-attack papers)
attack_dataloader = dict(
    batch_size=50, num_workers=4, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', pipeline=test_pipeline))

optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='Adam', lr=2e-4, betas=(0.5, 0.999)))
param_scheduler = []
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1))
