# ELM-ViT (the paper's element-wise learnable mask baseline, official `--is_SLM`): a free 64x64
# multiplier of the attention logits per layer, zeros at init. Same recipe as GMM-ViT.
_base_ = ['./gmm-vit_1xb128-100e_cifar10.py']
model = dict(backbone=dict(mask_type='elm'))
