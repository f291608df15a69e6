# ECO-M2F step C on COCO panoptic with beta = 0.02
# (official ecom2f_swin_tiny_beta_0.02_coco.yaml):
# same recipe as beta = 0.0005, only the utility's cost per layer changes (steps A and B are shared).
# Paper: 50.79 PQ at 181.6 GFLOPs.
_base_ = ['./eco-m2f_swin-t_gate-beta0.0005_8xb1-300k_coco-panoptic.py']
model = dict(panoptic_head=dict(gate_loss=dict(beta=0.02)))
