# Hallucinator + MoCo v2 on the built-in digits: the plain MoCo v2 toy config
# (mocov2_resnet18-c16_1xb64-6e_toy-pretrain.py) with the generator plugged in:
# one λ ~ U(0, 0.1) per batch, g = MLP([q; (1+λ)q − λk]) (256 -> 256 -> 256 -> 128),
# 2N queries against [k; k], 2N keys enqueued (queue 1024 = 8 steps of 128).
#   python tools/train.py configs/hallucinator/hallucinator-mocov2_resnet18-c16_1xb64-6e_toy-pretrain.py
_base_ = ['./mocov2_resnet18-c16_1xb64-6e_toy-pretrain.py']
model = dict(
    type='mmmask.HallucinatorMoCo',
    hallucinator=dict(type='mmmask.HallucinatorGenerator', feat_dim=128, max_ratio=0.1))
