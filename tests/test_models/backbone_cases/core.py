"""Backbones of the earlier issues: PPMA, STDC, the masked ViT of the MIM objectives."""
from mmmask.models.backbones.ppma import PPMA

CASES = {
    'PPMA': dict(
        kwargs=dict(arch=dict(PPMA.arch_zoo['tiny'], depths=[1, 1, 1, 1],
                              embed_dims=[16, 32, 64, 64], num_heads=[2, 2, 4, 4])),
        out_shapes=[(16, 16, 24), (32, 8, 12), (64, 4, 6), (64, 2, 3)]),
    'STDCNetS4': dict(
        kwargs=dict(base=16, layers=[1, 1, 1]),
        out_shapes=[(16, 16, 24), (64, 8, 12), (128, 4, 6), (256, 2, 3)]),
    'MaskedViT': dict(
        kwargs=dict(arch=dict(embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64),
                    img_size=32, patch_size=8, out_indices=(1, 3), out_type='featmap'),
        out_shapes=[(32, 8, 12), (32, 8, 12)]),
}
