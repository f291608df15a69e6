# Transfer: Mask R-CNN R50-FPN 1x on COCO initialised from the converted PixPro backbone
# (tools/model_converters/pixpro2mmmask.py --backbone-only). The official transfer
# (transfer/detection/configs/COCO_R_50_FPN_1x_PixPro.yaml) is detectron2's R50-FPN 1x with
# SyncBN in backbone, FPN and heads (MoCo's detection setup), RGB input with ImageNet mean/std and
# the stride on the 3x3 conv (STRIDE_IN_1X1 False = mmdet's pytorch style); mmdet's base configs
# with SyncBN everywhere and all stages trainable are the equivalent.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmmask'], allow_failed_imports=False)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(
        frozen_stages=-1, norm_cfg=norm_cfg, norm_eval=False, style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/pixpro_r50_400ep_backbone.pth',
                      prefix='backbone.')),
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))
