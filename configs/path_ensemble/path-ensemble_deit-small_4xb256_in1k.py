# Path-ensemble DeiT-S on ImageNet-1k (Chang et al., ICCV 2023): mmpretrain's DeiT-S recipe
# (300 epochs, AdamW lr 5e-4 x bs/512, wd 0.05, Mixup 0.8 / CutMix 1.0, label smoothing 0.1,
# RandAugment, random erasing, grad clip 5) with the ViT re-parameterised as an ensemble of its
# 2L+1 = 25 paths: learnable EnsembleScale (one scalar per path, init 1, no weight decay) and
# self-distillation from the full model (long paths) into the partial ensembles after every
# earlier layer (short paths), weight 1, temperature 1. Those three values and the distilled layers
# are our assumptions (the paper's values were not retrievable). A DeiT-S checkpoint loads
# unchanged (init_cfg Pretrained, prefix 'backbone.'), e.g. to fine-tune or to prune its paths.
_base_ = ['mmpretrain::deit/deit-small_4xb256_in1k.py']
model = dict(
    type='mmmask.PathEnsembleClassifier',
    backbone=dict(type='mmmask.PathEnsembleViT', arch='deit-small', img_size=224,
                  patch_size=16, ensemble_scale='scalar', scale_init=1.0, prune_paths=[]),
    distill_layers=list(range(11)),
    distill_weight=1.0,
    distill_temperature=1.0)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    '.cls_token': dict(decay_mult=0.0),
    '.pos_embed': dict(decay_mult=0.0),
    '.ensemble_scale': dict(decay_mult=0.0)}))
