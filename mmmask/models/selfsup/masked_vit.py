"""An mmpretrain ViT that takes masks from outside and returns every block's output.

Shared encoder of the masked-modeling objectives (HPM, GMML, MaskAlign, MTO, CMAE, Hi-End-MAE):
the mask comes from a generator in ``mmmask.models.masking`` (never drawn inside), and the
encoder either drops the masked tokens (``ids_keep``, MAE-style) or replaces them with a learned
mask token (``token_mask``, SimMIM-style). Its state dict is mmpretrain's ``VisionTransformer``
one, so a pretrained checkpoint loads into ``mmpretrain.VisionTransformer`` (classification) or an
mmseg UPerNet with ``init_cfg=dict(type='Pretrained', prefix='backbone.')``.
"""
from typing import List, NamedTuple, Optional

import torch
from mmpretrain.models.backbones import VisionTransformer
from mmpretrain.models.utils import build_2d_sincos_position_embedding, resize_pos_embed
from torch import Tensor, nn

from mmmask.registry import MODELS


class MaskedViTOutput(NamedTuple):
    """``tokens``: final-norm output ``[B, 1+K, D]`` (cls first); ``hidden``: raw output of every
    block (before the final norm), each ``[B, 1+K, D]``."""
    tokens: Tensor
    hidden: List[Tensor]


@MODELS.register_module()
class MaskedViT(VisionTransformer):
    """ViT with external masks (the encoder of the MAE family).

    Args:
        fixed_pos_embed: 2-D sin-cos position embedding, frozen (MAE, HPM, MaskAlign); False keeps
            mmpretrain's learned one (GMML).
        mask_token: add a learned mask token for ``token_mask`` (SimMIM, MTO).
        **kwargs: :class:`mmpretrain.models.VisionTransformer` arguments (``arch``,
            ``img_size``, ``patch_size``, ``drop_path_rate``, ``out_type``, ...).

    ``forward(x)`` is the plain ViT forward (fine-tuning, k-NN, feature extraction);
    ``forward_masked`` is the pretraining path.
    """

    def __init__(self, fixed_pos_embed: bool = True, mask_token: bool = False,
                 out_type: str = 'raw', **kwargs):
        kwargs.setdefault('norm_cfg', dict(type='LN', eps=1e-6))
        if isinstance(kwargs.get('out_indices'), tuple):  # mmpretrain edits them in place
            kwargs['out_indices'] = list(kwargs['out_indices'])
        super().__init__(out_type=out_type, with_cls_token=True, **kwargs)
        self.fixed_pos_embed = fixed_pos_embed
        if fixed_pos_embed:
            self.pos_embed.requires_grad = False
        self.mask_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims)) if mask_token else None

    def train(self, mode: bool = True):
        super().train(mode)
        return self  # mmpretrain's VisionTransformer.train returns None

    @property
    def num_patches(self) -> int:
        return self.patch_resolution[0] * self.patch_resolution[1]

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is not None and self.init_cfg.get('type') == 'Pretrained':
            return
        if self.fixed_pos_embed:
            if self.patch_resolution[0] != self.patch_resolution[1]:
                raise ValueError('the fixed sin-cos position embedding needs a square token grid')
            pos = build_2d_sincos_position_embedding(self.patch_resolution[0],
                                                     self.pos_embed.shape[-1], cls_token=True)
            self.pos_embed.data.copy_(pos.float())
        w = self.patch_embed.projection.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.cls_token, std=.02)
        if self.mask_token is not None:
            nn.init.normal_(self.mask_token, std=.02)

    def embed(self, x: Tensor, token_mask: Optional[Tensor] = None):
        """Patch tokens with position embedding (no cls), ``[B, L, D]``, and the grid."""
        x, grid = self.patch_embed(x)
        if token_mask is not None:
            if self.mask_token is None:
                raise ValueError('token_mask needs MaskedViT(mask_token=True)')
            w = token_mask.unsqueeze(-1).to(x.dtype)
            x = x * (1 - w) + self.mask_token.to(x.dtype) * w
        pos = resize_pos_embed(self.pos_embed, self.patch_resolution, grid,
                               mode=self.interpolate_mode, num_extra_tokens=self.num_extra_tokens)
        return x + pos[:, 1:], grid, pos[:, :1]

    def forward_masked(self, x: Tensor, ids_keep: Optional[Tensor] = None,
                       token_mask: Optional[Tensor] = None) -> MaskedViTOutput:
        """Encode ``x`` keeping only ``ids_keep`` tokens (in that order) and/or replacing the
        ``token_mask`` tokens by the mask token. Returns :class:`MaskedViTOutput`."""
        tokens, _, cls_pos = self.embed(x, token_mask)
        if ids_keep is not None:
            index = ids_keep.unsqueeze(-1).expand(-1, -1, tokens.shape[-1])
            tokens = torch.gather(tokens, 1, index)
        cls = (self.cls_token + cls_pos).expand(tokens.shape[0], -1, -1)
        h = self.pre_norm(self.drop_after_pos(torch.cat([cls, tokens], dim=1)))
        hidden = []
        for layer in self.layers:
            h = layer(h)
            hidden.append(h)
        out = self.ln1(h) if self.final_norm else h
        return MaskedViTOutput(out, hidden)
