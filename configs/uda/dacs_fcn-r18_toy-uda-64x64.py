# DACS (DAFormer's self-training recipe) on the toy UDA pair: the quickstart FCN as the student, an
# EMA teacher (alpha 0.999) giving confidence-weighted pseudo-labels on the target scenes, ClassMix
# of source onto target with colour jitter + blur, rare class sampling on the source. Evaluation on
# the target validation scenes, with the student.
# Toy deviations from DAFormer's GTA->Cityscapes setting: RCS min_pixels scaled to 64x64 crops
# (3000 px of 1914x1052 labels ~ 0.15%; here 40 px ~ 1%), no ImageNet feature distance (the toy
# student starts from scratch: there is no ImageNet model to stay close to), no pseudo-label bands.
_base_ = ['./source-only_fcn-r18_toy-uda-64x64.py']
student = {{_base_.model}}
# both domains are normalised and padded alike (mmseg's SegDataPreProcessor applied to each); the
# Runner hands this merged top-level preprocessor to the model
data_preprocessor = dict(type='mmmask.UDASegDataPreProcessor')
model = dict(
    _delete_=True,
    type='mmmask.DACS',
    model=student,
    alpha=0.999,
    pseudo_threshold=0.968,
    psweight_ignore_top=0,
    psweight_ignore_bottom=0,
    imnet_feature_dist_lambda=0.0,
    mix='class',
    blur=True,
    color_jitter_strength=0.2,
    color_jitter_probability=0.2)
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='mmmask.UDADataset',
        source={{_base_.source_train}},
        target={{_base_.target_train}},
        rare_class_sampling=dict(class_temp=0.01, min_crop_ratio=0.5, min_pixels=40)))
# the teacher is not optimised: leave its parameters out of the optimizer (resume needs this)
optim_wrapper = dict(constructor='mmmask.UDAOptimWrapperConstructor')
