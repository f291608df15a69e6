# UPerNet + CvT-13 on ADE20K, 512x512 crops, 160k iterations, 8 GPUs x 2 images. The CvT paper
# reports no segmentation results: this config shows the mmseg path with CvT's multi-scale maps
# (out_type='featmap': strides 4/8/16, channels 64/192/384; no positional embedding, so any crop
# size works) and uses the Swin/PPMA UPerNet schedule. The backbone starts from the ImageNet-1k
# model, converted with
#   python tools/model_converters/cvt2mmmask.py CvT-13-224x224-IN-1k.pth \
#       checkpoints/cvt-13_in1k_backbone.pth --backbone-only --no-final-norm
_base_ = [
    '../_base_/models/upernet_ppma.py', '../_base_/datasets/ade20k.py',
    '../_base_/seg_runtime.py', '../_base_/schedules/schedule_160k_adamw_poly.py'
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='mmmask.CvT',
        arch='cvt-13',
        out_indices=(0, 1, 2),
        out_type='featmap',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/cvt-13_in1k_backbone.pth',
                      prefix='backbone.')),
    decode_head=dict(in_channels=[64, 192, 384], in_index=[0, 1, 2], num_classes=150),
    auxiliary_head=dict(in_channels=384, in_index=2, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'norm': dict(decay_mult=0.),
    'ln1': dict(decay_mult=0.),
    'ln2': dict(decay_mult=0.),
    '.bn.': dict(decay_mult=0.),
    'cls_token': dict(decay_mult=0.)
}))
train_dataloader = dict(batch_size=2)
