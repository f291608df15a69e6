# ViT-P fusion over mmseg's own Mask2Former Swin-L (IN-22k, 640x640, 56.1 mIoU in mmseg's zoo),
# ADE20K semantic, test only. The stage-1 config is mmseg's, inherited from the installed package.
#   python tools/test.py configs/vitp/vitp-b14_mask2former-swin-l_ade20k-640x640.py \
#       --cfg-options model.segmentor_checkpoint=M2F.pth model.classifier_checkpoint=VITP.pth
_base_ = [
    'mmseg::mask2former/mask2former_swin-l-in22k-384x384-pre_8xb2-160k_ade20k-640x640.py',
    '../_base_/models/vitp_vit-b14.py'
]
custom_imports = dict(imports=['mmmask'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='mmmask.ViTPSegmentor',
    segmentor={{_base_.model}},
    segmentor_checkpoint='checkpoints/mask2former_swin-l-in22k-384x384-pre_8xb2-160k_ade20k-640x640.pth',
    classifier={{_base_.vitp_classifier}},
    classifier_checkpoint='checkpoints/vitp_vit-b14_ade20k_mmmask.pth',
    alpha=0.4,
    classifier_size=(518, 518))
