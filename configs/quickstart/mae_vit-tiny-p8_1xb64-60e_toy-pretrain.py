# mmpretrain's MAE on the built-in digits: the baseline of mmmask's masked-modeling objectives
# (their toy configs share this data, schedule, ViT and probes; tools/analysis_tools/
# benchmark_selfsup.py times every objective against it).
#   python tools/train.py configs/quickstart/mae_vit-tiny-p8_1xb64-60e_toy-pretrain.py
_base_ = [
    '../_base_/models/mae_vit-tiny-p8_toy.py', '../_base_/datasets/toy_pretrain.py',
    '../_base_/schedules/toy_pretrain_60e.py', '../_base_/pretrain_runtime.py'
]
model = dict(data_preprocessor={{_base_.data_preprocessor}})
