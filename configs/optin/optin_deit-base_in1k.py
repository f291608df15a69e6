# OPTIN one-shot pruning of DeiT-B (ImageNet-1k), the paper's ImageNet setting: no retraining,
# one calibration batch of training images, 60% of the prunable MACs kept (mac_constraint 0.6 of
# the official configs), lambda 10, KL temperature 4, 768 sampled tokens for the MD distortion.
#   python tools/analysis_tools/optin_prune.py configs/optin/optin_deit-base_in1k.py \
#       deit-base_pt-16xb64_in1k_20220216-db63c16c.pth --flops-budget 0.6
# Heads and FFN neurons of the mmpretrain VisionTransformer are sliced physically (per-layer head
# counts); 12 x 12 heads + 12 x 3072 neurons = 37,008 scoring forwards (use a GPU).
_base_ = ['mmpretrain::deit/deit-base_16xb64_in1k.py']
optin = dict(
    flops_budget=0.6, calib_batches=1, calib_batch_size=128,
    lambda_=10., temperature=4., md_samples=768, md_variant='token',
    head_metric_decay=0.5, neuron_metric_decay=1.0, head_final_decay=0.5,
    neuron_final_decay=0.5, include_final=True, neuron_group=1, seed=0)
