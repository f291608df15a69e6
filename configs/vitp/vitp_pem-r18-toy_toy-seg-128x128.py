# ViT-P fusion on the toy scenes (test only): the toy PEM model proposes masks and class logits,
# the toy ViT-P classifier re-classifies each mask from its argmax point, p ∝ p_PEM^0.6 · p_ViT-P^0.4.
# Train both stages first (see README.md), then:
#   python tools/test.py configs/vitp/vitp_pem-r18-toy_toy-seg-128x128.py
# (alpha=0 in --cfg-options gives the stage-1 result through the same code path.)
_base_ = [
    '../pem/pem_r18-toy_1xb8-2k_toy-seg-128x128.py', '../_base_/models/vitp_vit-t4_toy.py'
]
model = dict(
    _delete_=True,
    type='mmmask.ViTPSegmentor',
    segmentor={{_base_.model}},
    segmentor_checkpoint='work_dirs/pem_r18-toy_1xb8-2k_toy-seg-128x128/iter_2000.pth',
    classifier={{_base_.vitp_classifier}},
    classifier_checkpoint='work_dirs/vitp_vit-t4-hybrid_1xb16-1k_toy-points-128x128/iter_1000.pth',
    alpha=0.4,
    classifier_size=(128, 128))
