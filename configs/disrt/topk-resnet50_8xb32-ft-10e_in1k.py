# Top-K activation sparsity fine-tuning of mmpretrain's ImageNet ResNet-50 (DiSRT paper,
# arXiv 2506.00718, Sec. "Top-K restores global sensitivity"; Top-K layer of Li et al., NeurIPS
# 2023, official TopKLayer: per sample and channel keep the int(k*H*W) largest |activations|).
# The paper does not publish its fine-tuning recipe; ours (assumption): Top-K k=0.2 after
# layer3 and layer4, start from the supervised checkpoint, SGD lr 0.01 (8x32 batch) cosine to 0
# over 10 epochs, the standard mmpretrain ResNet-50 data pipeline. The backbone keys are the
# upstream ones (the Top-K hooks have no parameters), so the checkpoint loads unchanged.
#   bash tools/dist_train.sh configs/disrt/topk-resnet50_8xb32-ft-10e_in1k.py 8
# then: python tools/analysis_tools/disrt_testbench.py configs/disrt/disrt_resnet50_in1k-val.py \
#   work_dirs/.../epoch_10.pth --topk 0.2 --topk-after backbone.layer3 backbone.layer4
_base_ = ['mmpretrain::resnet/resnet50_8xb32_in1k.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmask.WithTopKSparsity',
        backbone=dict(type='mmpretrain.ResNet', depth=50, num_stages=4, out_indices=(3, ),
                      style='pytorch'),
        k=0.2,
        after=['layer3', 'layer4']))
load_from = ('https://download.openmmlab.com/mmclassification/v0/resnet/'
             'resnet50_8xb32_in1k_20210831-ea4938fc.pth')
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(_delete_=True, type='CosineAnnealingLR', T_max=10, by_epoch=True,
                       eta_min=0.)
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=1)
