# The frozen ViT of the paper's main setting: DINOv2-B/14 (mmpretrain port of the official
# weights) at 518 px -> 37x37 patch tokens, last layer after the final LayerNorm (as the official
# get_intermediate_layers(norm=True)). Used by the DVT tools (stage 1 per image + stage 2):
#   python tools/analysis_tools/dvt_fit.py configs/dvt/dvt_dinov2-b14_stage1-518x518.py none \
#       data/VOCdevkit/voc_train_images --work-dir work_dirs/dvt_dinov2-b14_voc --num-images 10000
# (official: 10k VOC07+12 train images, 768 views, 25k stage-1 iterations with a 16-level hash
# grid, stage 2: 1 block, 50k iterations, batch 16 per GPU x 8 GPUs; use --device cuda)
#   python tools/analysis_tools/dvt_denoise.py configs/dvt/dvt_dinov2-b14_stage1-518x518.py none \
#       demo_images --denoiser work_dirs/dvt_dinov2-b14_voc/denoiser.pth --out work_dirs/dvt_vis
default_scope = 'mmpretrain'
dinov2_b14 = dict(
    type='VisionTransformer', arch='base', img_size=518, patch_size=14,
    layer_scale_init_value=1e-5, final_norm=True, out_type='featmap',
    init_cfg=dict(type='Pretrained', prefix='backbone.', checkpoint=(
        'https://download.openmmlab.com/mmpretrain/v1.0/dinov2/'
        'vit-base-p14_dinov2-pre_3rdparty_20230426-ba246503.pth')))
model = dict(type='ImageClassifier', backbone=dinov2_b14, neck=None, head=None)
data_preprocessor = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         to_rgb=True)
