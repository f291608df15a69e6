# The ViT-B/14 point classifier for Cityscapes' 19 classes.
_base_ = './vitp_vit-b14.py'
vitp_classifier = dict(num_classes=19)
