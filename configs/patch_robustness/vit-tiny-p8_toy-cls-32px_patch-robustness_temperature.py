# Toy ViT (mmpretrain VisionTransformer, 64-d x 3 blocks x 4 heads, patch 8 on the 32 px digits:
# a 4x4 grid + CLS) for the patch-robustness tool, evaluated at T = 1, 2 and 4. Trained on the toy
# digits from scratch such a ViT stays near chance (see configs/hybrid_distill/), so the evidence
# test (tests/test_evaluation/test_patch_robustness_learns.py) trains it on a synthetic
# colour-and-stripes task instead; this config serves the tool on any checkpoint of this arch.
#   python tools/analysis_tools/patch_robustness.py \
#       configs/patch_robustness/vit-tiny-p8_toy-cls-32px_patch-robustness_temperature.py none
_base_ = ['../_base_/datasets/toy_cls.py', '../_base_/schedules/toy_cls_30e.py',
          '../_base_/cls_runtime.py']
custom_imports = dict(imports=['mmmask.models', 'mmmask.evaluation.robustness'],
                      allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='VisionTransformer',
                  arch=dict(embed_dims=64, num_layers=3, num_heads=4, feedforward_channels=128),
                  img_size=32, patch_size=8, out_type='cls_token'),
    head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=64,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
patch_robustness = dict(
    num_images=64, patch_size=8, positions='all', severity=5,
    corruptions=['gaussian_noise', 'defocus_blur'], kinds=['natural', 'adversarial', 'random'],
    eps=255.0, steps=20, step_size=16.0, temperature=[1.0, 2.0, 4.0])
custom_hooks = [dict(type='mmmask.AttentionTemperatureHook', temperature=2.0)]
