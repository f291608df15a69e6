# The dense teacher of Sparsifiner-S (official main.py: VisionTransformerTeacher = DeiT-S,
# patch 16, D 384, depth 12, 6 heads, loaded from deit_small_patch16_224-cd65a155.pth, kept in
# eval mode). This config evaluates it on ImageNet-1k (DeiT reports 79.8 % top-1):
#   python tools/model_converters/sparsifiner2mmmask.py deit_small_patch16_224-cd65a155.pth \
#       checkpoints/deit-small_p16_224_fb-cd65a155_mmmask.pth
#   python tools/test.py configs/sparsifiner/deit-small_teacher_8xb168_in1k.py \
#       checkpoints/deit-small_p16_224_fb-cd65a155_mmmask.pth
# sparsifiner-s_deit-s_8xb168-50e_in1k.py uses the same model as `teacher` (with out_type='raw').
_base_ = ['../_base_/datasets/imagenet_bs128_ppma_224.py', '../_base_/cls_runtime.py']
teacher_checkpoint = 'checkpoints/deit-small_p16_224_fb-cd65a155_mmmask.pth'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='VisionTransformer', arch='deit-small', img_size=224, patch_size=16,
                  out_type='cls_token'),
    neck=None,
    head=dict(type='VisionTransformerClsHead', num_classes=1000, in_channels=384),
    init_cfg=dict(type='Pretrained', checkpoint=teacher_checkpoint))
train_dataloader = dict(batch_size=168)
val_dataloader = dict(batch_size=168)
test_dataloader = val_dataloader
