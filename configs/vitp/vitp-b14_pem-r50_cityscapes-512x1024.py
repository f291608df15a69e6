# ViT-P fusion, Cityscapes semantic (test only): PEM R50 + the 19-class ViT-B/14 point classifier,
# which sees the image at 518x1036 as in the official Cityscapes config.
_base_ = ['../pem/pem_r50_8xb4-90k_cityscapes-512x1024.py', '../_base_/models/vitp_vit-b14_cityscapes.py']
model = dict(
    _delete_=True,
    type='mmmask.ViTPSegmentor',
    segmentor={{_base_.model}},
    segmentor_checkpoint='checkpoints/pem_r50_8xb4-90k_cityscapes-512x1024.pth',
    classifier={{_base_.vitp_classifier}},
    classifier_checkpoint='checkpoints/vitp_vit-b14_cityscapes_mmmask.pth',
    alpha=0.4,
    classifier_size=(518, 1036))
