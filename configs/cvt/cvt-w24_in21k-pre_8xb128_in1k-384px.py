# CvT-W24 pre-trained on ImageNet-22k, fine-tuned/evaluated on ImageNet-1k at 384x384
# (87.6 top-1 reported). The official repo releases the model (CvT-w24-384x384-IN-22k.pth) and
# experiments/imagenet/cvt/cvt-w24-384x384.yaml, but not the ImageNet-22k pre-training recipe.
# Use it to evaluate the converted release:
#   python tools/model_converters/cvt2mmmask.py CvT-w24-384x384-IN-22k.pth cvt-w24_in22k-1k.pth
#   python tools/test.py configs/cvt/cvt-w24_in21k-pre_8xb128_in1k-384px.py cvt-w24_in22k-1k.pth
# Training settings are the yaml's: batch 128/GPU x 8, lr 1e-3, weight decay 0.1, drop path
# [0, 0, 0.3] (the arch preset), 300 epochs; 384 px pipelines as for CvT-13-384.
_base_ = ['./cvt-13_8xb256_in1k-384px.py']
model = dict(backbone=dict(arch='cvt-w24'), head=dict(in_channels=1024))
train_dataloader = dict(batch_size=128)
optim_wrapper = dict(optimizer=dict(lr=1.25e-4 * 8, weight_decay=0.1))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / 1e-3, by_epoch=True, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5, end=300,
         convert_to_iter_based=True)
]
auto_scale_lr = dict(base_batch_size=1024)
