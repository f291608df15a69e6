# OPTIN on the Swin-T backbone of mmseg's Mask2Former (Cityscapes semantic segmentation, the
# paper's transfer setting). The KL term compares the per-pixel class scores of
# EncoderDecoder.encode_decode (class dim 1); the MD trajectory runs over the backbone blocks.
# Only the backbone's heads and FFN neurons are pruned (the pixel decoder / transformer decoder
# are untouched). Cost: 138 heads + 17,664 neurons; neuron_group=16 scores neurons in groups of
# 16 (1,104 forwards) — a deviation from the per-neuron paper recipe for tractability.
#   python tools/analysis_tools/optin_prune.py \
#       configs/optin/optin_mask2former_swin-t_cityscapes-512x1024.py \
#       mask2former_swin-t_8xb2-90k_cityscapes-512x1024_20221127_144501-36c59341.pth
_base_ = ['mmseg::mask2former/mask2former_swin-t_8xb2-90k_cityscapes-512x1024.py']
optin = dict(
    flops_budget=0.6, calib_batches=1, calib_batch_size=2,
    lambda_=10., temperature=4., md_samples=768, md_variant='token',
    head_metric_decay=0.5, neuron_metric_decay=1.0, head_final_decay=0.5,
    neuron_final_decay=0.5, include_final=True, neuron_group=16, seed=0)
