# ViT-P fusion, ADE20K semantic (test only): PEM R50 (configs/pem) proposes 100 masks, the ViT-B/14
# point classifier re-classifies each from its argmax point on the image squashed to 518x518,
# p ∝ p_PEM^0.6 · p_ViT-P^0.4 (alpha 0.4, as every official OneFormer/Mask2Former config).
#   python tools/test.py configs/vitp/vitp-b14_pem-r50_ade20k-512x512.py \
#       --cfg-options model.segmentor_checkpoint=PEM.pth model.classifier_checkpoint=VITP.pth
_base_ = ['../pem/pem_r50_8xb4-160k_ade20k-512x512.py', '../_base_/models/vitp_vit-b14.py']
model = dict(
    _delete_=True,
    type='mmmask.ViTPSegmentor',
    segmentor={{_base_.model}},
    segmentor_checkpoint='checkpoints/pem_r50_8xb4-160k_ade20k-512x512.pth',
    classifier={{_base_.vitp_classifier}},
    classifier_checkpoint='checkpoints/vitp_vit-b14_ade20k_mmmask.pth',
    alpha=0.4,
    classifier_size=(518, 518))
