# ECO-M2F step C on Cityscapes panoptic with beta = 0.01 (official
# ecom2f_swin_tiny_beta_0.01_cityscapes.yaml: 4 images per iteration, otherwise as beta = 0.003).
# Paper: 62.09 PQ / 79.58 mIoU at 439.7 GFLOPs.
_base_ = ['./eco-m2f_swin-t_gate-beta0.003_8xb1-50k_cityscapes-panoptic-512x1024.py']
model = dict(panoptic_head=dict(gate_loss=dict(beta=0.01)))
auto_scale_lr = dict(enable=False, base_batch_size=4)
