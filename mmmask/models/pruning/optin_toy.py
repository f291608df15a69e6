"""A hybrid-ViT encoder neck for OPTIN's toy evidence.

Plain patch ViTs stay at chance on the built-in toy digits within CPU budgets (see
``configs/hybrid_distill``: 8.4 % after 10 epochs), so the toy OPTIN model is the ViT paper's
*hybrid* (Dosovitskiy et al., ICLR 2021, §3.1): the tokens are the cells of a CNN feature map
(the toy ResNet-18's ``layer3``), followed by standard mmpretrain ``TransformerEncoderLayer``s
with a class token. Its blocks are exactly those of mmpretrain's ``VisionTransformer``
(``MultiheadAttention`` + mmcv ``FFN``), so OPTIN discovers, scores and slices them unchanged.
"""
from typing import Sequence, Tuple

import torch
from mmengine.model import BaseModule, ModuleList
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor, nn

from mmmask.registry import MODELS

__all__ = ['OptinHybridViTNeck']


@MODELS.register_module()
class OptinHybridViTNeck(BaseModule):
    """CNN feature map → tokens (1×1 projection) + class token + learned positions →
    ``num_layers`` pre-norm ViT blocks → final LayerNorm → class token ``(B, embed_dims)``.

    Args:
        in_channels: channels of the feature map (the last of the backbone outputs).
        num_tokens: H·W of that map (for the position embedding).
        embed_dims, num_layers, num_heads, feedforward_channels: ViT block sizes.
    """

    def __init__(self, in_channels: int, num_tokens: int, embed_dims: int = 128,
                 num_layers: int = 4, num_heads: int = 4, feedforward_channels: int = 256,
                 init_cfg=None):
        super().__init__(init_cfg)
        from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
        self.proj = nn.Conv2d(in_channels, embed_dims, 1)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens + 1, embed_dims))
        self.layers = ModuleList([
            TransformerEncoderLayer(embed_dims=embed_dims, num_heads=num_heads,
                                    feedforward_channels=feedforward_channels)
            for _ in range(num_layers)
        ])
        self.ln = nn.LayerNorm(embed_dims, eps=1e-6)

    def init_weights(self) -> None:
        super().init_weights()
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor]:
        x = self.proj(inputs[-1]).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed
        for layer in self.layers:
            x = layer(x)
        return (self.ln(x)[:, 0], )
