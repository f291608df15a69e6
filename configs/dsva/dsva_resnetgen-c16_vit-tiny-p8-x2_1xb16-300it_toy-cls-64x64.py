# dSVA at toy scale: a small ResNet generator (ngf 16, 2 residual blocks: the CDA/BIA setting for
# low-resolution data) trained on the built-in digit crops (64x64, as the toy "ImageNet"
# classifier configs/quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py sees them) against two
# frozen tiny ViTs standing in for DINO (CL teacher, global token-map similarity + CLS attention)
# and MAE (MIM teacher, per-token similarity + CLS attention).
#   python tools/train.py configs/dsva/dsva_resnetgen-c16_vit-tiny-p8-x2_1xb16-300it_toy-cls-64x64.py
#   python tools/analysis_tools/dsva_attack.py \
#       configs/dsva/dsva_resnetgen-c16_vit-tiny-p8-x2_1xb16-300it_toy-cls-64x64.py \
#       work_dirs/dsva_resnetgen-c16_vit-tiny-p8-x2_1xb16-300it_toy-cls-64x64/iter_300.pth \
#       --victim configs/quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py \
#           work_dirs/resnet18-c32_1xb32-10e_toy-cls-64x64/epoch_10.pth
# Teachers are randomly initialised by default (no toy DINO/MAE is shipped; random ViT features
# already give the generator a structured signal, see README). To attack self-supervised toy
# teachers, set e.g. model.mim_teacher.pretrained=<a checkpoint of
# configs/quickstart/mae_vit-tiny-p8_1xb64-60e_toy-pretrain.py> and pretrained_prefix='backbone.'
# with that config's arch (toy_vit: embed_dims=128, feedforward_channels=512; patch 8, 32 px).
_base_ = ['../_base_/datasets/toy_cls.py', '../_base_/cls_runtime.py']

# tiny ViTs (64-d x 4 blocks x 4 heads, patch 8 on 32 px): the teachers see the 64 px images
# resized to 32 px (at 64 px the generator learns a patch-grid pattern the CNN victim ignores)
toy_vit = dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=128)
teacher_backbone = dict(type='mmpretrain.VisionTransformer', arch=toy_vit, img_size=32,
                        patch_size=8, out_type='raw', with_cls_token=True, final_norm=True)
imagenet_mean, imagenet_std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
# the generator works on [0, 1] RGB images: the loader's uint8 BGR images / 255, channels flipped
gen_preprocessor = dict(type='mmpretrain.ClsDataPreprocessor', mean=[0., 0., 0.],
                        std=[255., 255., 255.], to_rgb=True)
data_preprocessor = dict(_delete_=True, **gen_preprocessor)  # replaces the toy_cls base's
model = dict(
    type='mmmask.DSVAAttack',
    data_preprocessor=gen_preprocessor,
    generator=dict(type='mmmask.DSVAResNetGenerator', ngf=16, num_blocks=2),
    cl_teacher=dict(
        model=teacher_backbone,
        feature_layers=['layers.1', 'layers.3'],
        attention_layers=['layers.3.attn'],
        mean=imagenet_mean, std=imagenet_std, input_size=(32, 32)),
    mim_teacher=dict(
        model=teacher_backbone,
        feature_layers=['layers.1', 'layers.3'],
        attention_layers=['layers.3.attn'],
        mean=imagenet_mean, std=imagenet_std, input_size=(32, 32)),
    eps=16 / 255,
    cl_weight=1.0, mim_weight=1.0, attn_weight=1.0)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.6, 1.0)),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64)),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=16, dataset=dict(pipeline=train_pipeline))
# no val/test loop while training the generator; tools/analysis_tools/dsva_attack.py evaluates
# transfer on `attack_dataloader` (the toy val split, resized as the toy classifiers see it)
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = test_cfg = test_evaluator = None
attack_dataloader = dict(
    batch_size=50, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='mmmask.ToyData', world='cls', reader='mmpretrain.CustomDataset',
                 data_root='data/toy/cls/', data_prefix='val', pipeline=test_pipeline))

# BIA/CDA generator optimiser (Adam, betas (0.5, 0.999), constant lr); toy change: lr 1e-3
# instead of 2e-4 because the toy run has 300 iterations instead of an ImageNet epoch
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='Adam', lr=1e-3, betas=(0.5, 0.999)))
param_scheduler = []
train_cfg = dict(type='IterBasedTrainLoop', max_iters=300)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=300, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
