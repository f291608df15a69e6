# ViT-P fusion for panoptic segmentation on the toy scenes (test only): the toy PEM panoptic model
# (mmdet Mask2Former detector + PEM head) proposes masks, the toy ViT-P classifier re-classifies
# them; mmdet's MaskFormerFusionHead then builds the panoptic map from the fused class logits.
# The toy panoptic and semantic data share one class order (digits, sky, ground): no label_map.
#   python tools/test.py configs/vitp/vitp_pem-r18-toy_toy-panoptic-64x64.py
_base_ = [
    '../pem/pem_r18-toy_1xb8-2k_toy-panoptic-64x64.py', '../_base_/models/vitp_vit-t4_toy.py'
]
model = dict(
    _delete_=True,
    type='mmmask.ViTPPanopticSegmentor',
    detector={{_base_.model}},
    detector_checkpoint='work_dirs/pem_r18-toy_1xb8-2k_toy-panoptic-64x64/iter_2000.pth',
    classifier={{_base_.vitp_classifier}},
    classifier_checkpoint='work_dirs/vitp_vit-t4-hybrid_1xb16-1k_toy-points-128x128/iter_1000.pth',
    alpha=0.4,
    classifier_size=(128, 128))
