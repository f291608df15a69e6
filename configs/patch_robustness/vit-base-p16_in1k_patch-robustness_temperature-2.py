# ViT-B/16 patch robustness with attention temperature T = 2 at test time (see
# deit-small-p16_in1k_patch-robustness_temperature-2.py).
_base_ = ['./vit-base-p16_in1k_patch-robustness.py']
custom_hooks = [dict(type='mmmask.AttentionTemperatureHook', temperature=2.0)]
patch_robustness = dict(temperature=[1.0, 2.0])
