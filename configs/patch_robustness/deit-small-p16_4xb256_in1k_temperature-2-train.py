# Attention temperature as a model option (trained / fine-tuned with it): mmpretrain's DeiT-S
# recipe with every attention layer at T = 2 through mmmask.WithAttentionBias (same parameter
# names: pretrained DeiT-S checkpoints load unchanged for fine-tuning). The mmpretrain
# VisionTransformer inside is built with the DeiT-S arch of the base config.
#   python tools/train.py configs/patch_robustness/deit-small-p16_4xb256_in1k_temperature-2-train.py
_base_ = ['mmpretrain::deit/deit-small_4xb256_in1k.py']
custom_imports = dict(imports=['mmmask.models'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmask.WithAttentionBias',
        backbone=dict(type='mmpretrain.VisionTransformer', arch='deit-small', img_size=224,
                      patch_size=16, drop_path_rate=0.1),
        bias_provider=dict(type='mmmask.AttentionTemperature', temperature=2.0)))
