# ECO-M2F step A on COCO panoptic: Mask2Former Swin-T (mmdet's LSJ 50e recipe, 8 GPUs x 2 images)
# whose 6-layer MSDeformAttn encoder exits at a random depth in {2..6} every iteration, drawn
# proportionally to the depth ("weighted stochastic depth", paper Sec. 3.2; the released code has
# no step-A recipe). Validation runs the full encoder. Steps B and C: see README.md.
_base_ = ['mmdet::mask2former/mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco-panoptic.py']
custom_imports = dict(imports=['mmmask'], allow_failed_imports=False)
model = dict(
    type='mmmask.ECOMask2Former',
    train_gate_only=False,
    panoptic_head=dict(
        type='mmmask.ECOMask2FormerHead',
        gate_loss=dict(beta=0.0005, loss_weight=1.0),
        pixel_decoder=dict(
            type='mmmask.EarlyExitMSDeformAttnPixelDecoder',
            num_gates=4,
            exit_mode='full',
            train_exit_mode='sample',
            exit_sampling_weights=None)))  # ∝ depth: 2:3:4:5:6
find_unused_parameters = True  # the gate is not used in step A
