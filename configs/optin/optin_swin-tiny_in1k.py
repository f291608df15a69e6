# OPTIN one-shot pruning of Swin-T (ImageNet-1k), settings as for DeiT (budget 0.6, lambda 10,
# T = 4, one calibration batch). WindowMSA derives its head width from its input, so pruned heads
# stay in the model as zeroed weights (their MACs are reported as removed); FFN neurons are
# sliced physically. 138 heads + 9,216 neurons (neuron_group=1) scoring forwards.
#   python tools/analysis_tools/optin_prune.py configs/optin/optin_swin-tiny_in1k.py \
#       swin_tiny_224_b16x64_300e_imagenet_20210616_090925-66df6be6.pth
_base_ = ['mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py']
optin = dict(
    flops_budget=0.6, calib_batches=1, calib_batch_size=128,
    lambda_=10., temperature=4., md_samples=768, md_variant='token',
    head_metric_decay=0.5, neuron_metric_decay=1.0, head_final_decay=0.5,
    neuron_final_decay=0.5, include_final=True, neuron_group=1, seed=0)
