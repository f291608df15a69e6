"""Hi-End-MAE: hierarchical encoder-driven masked autoencoder (Tang et al., MedIA 2025,
https://arxiv.org/abs/2502.08347; official 3-D code FengheTan9/Hi-End-MAE), transferred to 2-D.

An MAE whose decoder, after a few self-attention blocks on ``[final encoder tokens, mask
tokens]``, cross-attends to projected *intermediate* encoder outputs, deep to shallow (official:
outputs of blocks 10, 7, 4 of 12). Targets are per-patch normalised pixels (non-affine LayerNorm);
the loss is the MSE on the masked tokens.

The decoder and loss work on token sequences and a token order only, so they are agnostic of the
patch embedding's dimensionality: the 2-D model uses :class:`MaskedViT`; the parity test runs the
official 3-D fixture through the same decoder/loss with a 3-D patch embedding built by hand.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import FFN
from mmengine.model import BaseModule
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.models.utils import MultiheadAttention, build_2d_sincos_position_embedding
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from mmmask.models.masking import MaskPair
from mmmask.registry import MODELS
from .hpm import patchify

__all__ = ['HiEndMAE', 'HiEndMAEDecoder', 'HiEndCrossAttention', 'HiEndCrossBlock',
           'hi_end_mae_loss', 'encode_visible_tokens']


class HiEndCrossAttention(nn.Module):
    """Multi-head cross-attention: queries from the decoder, keys/values from an encoder tap
    (separate ``q`` and ``kv`` projections, default scale ``head_dim^-0.5``)."""

    def __init__(self, embed_dims: int, num_heads: int, kv_dims: Optional[int] = None,
                 qkv_bias: bool = True, attn_drop: float = 0.0):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims {embed_dims} is not divisible by num_heads {num_heads}')
        self.num_heads, self.attn_drop = num_heads, attn_drop
        self.q = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
        self.kv = nn.Linear(kv_dims or embed_dims, 2 * embed_dims, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, x: Tensor, memory: Tensor) -> Tensor:
        B, N, C = x.shape
        h = self.num_heads
        q = self.q(x).reshape(B, N, h, C // h).transpose(1, 2)
        kv = self.kv(memory).reshape(B, memory.shape[1], 2, h, C // h).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(
            q, kv[0], kv[1], dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class HiEndCrossBlock(BaseModule):
    """``x += SelfAttn(norm0(x)); x += CrossAttn(norm1(x), tap); x += MLP(norm2(x))`` — the
    encoder tap is used as given (not normalised), as in the official code."""

    def __init__(self, embed_dims: int, num_heads: int, feedforward_channels: int,
                 qkv_bias: bool = True, norm_cfg: dict = dict(type='LN', eps=1e-6)):
        super().__init__()
        self.norm0 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.self_attn = MultiheadAttention(embed_dims, num_heads, qkv_bias=qkv_bias)
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.cross_attn = HiEndCrossAttention(embed_dims, num_heads, qkv_bias=qkv_bias)
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.ffn = FFN(embed_dims, feedforward_channels, num_fcs=2, ffn_drop=0.0,
                       act_cfg=dict(type='GELU'), add_identity=True)

    def forward(self, x: Tensor, memory: Tensor) -> Tensor:
        x = x + self.self_attn(self.norm0(x))
        x = x + self.cross_attn(self.norm1(x), memory)
        return self.ffn(self.norm2(x), identity=x)


@MODELS.register_module()
class HiEndMAEDecoder(BaseModule):
    """Hi-End-MAE's encoder-driven decoder.

    Args:
        num_patches: tokens per image ``L`` (the fixed sin-cos decoder position embedding has one
            row per patch, no cls row).
        embed_dim: encoder width.
        decoder_embed_dim / decoder_num_heads: decoder width / heads (official base: 384 / 12).
        self_depth: self-attention blocks before the cross blocks (official 2).
        num_taps: intermediate encoder outputs, one cross block each (official 3).
        out_channels: prediction per token (``p²·C``).
        grid: token grid ``(h, w)`` of the 2-D sin-cos embedding (default: square).

    ``projs[i]`` projects tap ``i`` (shallow → deep, official ``encoder_to_decoder[i]``) and
    ``projs[-1]`` the final-norm encoder output; cross block ``k`` reads tap ``num_taps-1-k``.
    """

    def __init__(self, num_patches: int, embed_dim: int, out_channels: int,
                 decoder_embed_dim: int = 384, decoder_num_heads: int = 12, self_depth: int = 2,
                 num_taps: int = 3, mlp_ratio: float = 4.0,
                 grid: Optional[Tuple[int, int]] = None,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 init_cfg: Optional[Union[List[dict], dict]] = None):
        super().__init__(init_cfg=init_cfg)
        self.num_patches, self.num_taps = num_patches, num_taps
        side = int(round(num_patches**.5))
        self.grid = tuple(grid) if grid is not None else (side, side)
        ffn = int(mlp_ratio * decoder_embed_dim)
        self.projs = nn.ModuleList(
            [nn.Linear(embed_dim, decoder_embed_dim) for _ in range(num_taps + 1)])
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, decoder_embed_dim),
                                      requires_grad=False)
        self.blocks = nn.ModuleList([
            TransformerEncoderLayer(decoder_embed_dim, decoder_num_heads, ffn, qkv_bias=True,
                                    norm_cfg=norm_cfg) for _ in range(self_depth)
        ])
        self.cross_blocks = nn.ModuleList([
            HiEndCrossBlock(decoder_embed_dim, decoder_num_heads, ffn, norm_cfg=norm_cfg)
            for _ in range(num_taps)
        ])
        self.norm = build_norm_layer(norm_cfg, decoder_embed_dim)[1]
        self.head = nn.Linear(decoder_embed_dim, out_channels)

    def init_weights(self) -> None:
        super().init_weights()
        # the 2-D sin-cos grid (a converted 3-D checkpoint brings its own 3-D one)
        if self.grid[0] * self.grid[1] != self.num_patches:
            raise ValueError(f'grid {self.grid} does not have {self.num_patches} tokens; pass '
                             'grid=(h, w)')
        if self.pos_embed.shape[-1] % 4:
            raise ValueError('the 2-D sin-cos position embedding needs decoder_embed_dim '
                             f'divisible by 4, got {self.pos_embed.shape[-1]}')
        pos = build_2d_sincos_position_embedding(self.grid, self.pos_embed.shape[-1])
        self.pos_embed.data.copy_(pos.float())
        nn.init.normal_(self.mask_token, std=.02)

    def forward(self, final: Tensor, taps: Sequence[Tensor], ids_order: Tensor) -> Tensor:
        """Decode.

        Args:
            final: final-norm encoder output ``[B, 1+K, De]`` (cls first, visible tokens in the
                order of ``ids_order[:, :K]``).
            taps: raw intermediate encoder outputs, shallow → deep, each ``[B, 1+K, De]``.
            ids_order: ``[B, L]`` visible patch ids then masked ones.

        Returns:
            ``[B, 1+L, out_channels]`` in the order ``[cls, ids_order...]`` (not un-shuffled).
        """
        if len(taps) != self.num_taps:
            raise ValueError(f'the decoder has {self.num_taps} cross blocks but got {len(taps)} '
                             'encoder taps; match tap_indices to num_taps')
        B, L = ids_order.shape
        if L != self.num_patches:
            raise ValueError(f'ids_order has {L} tokens, the decoder was built for '
                             f'{self.num_patches}')
        x = self.projs[-1](final)
        D = x.shape[-1]
        x = torch.cat([x, self.mask_token.expand(B, L + 1 - x.shape[1], -1)], dim=1)
        pos = torch.gather(self.pos_embed.expand(B, -1, -1), 1,
                           ids_order.unsqueeze(-1).expand(-1, -1, D))
        x = torch.cat([x[:, :1], x[:, 1:] + pos], dim=1)
        for blk in self.blocks:
            x = blk(x)
        for k, blk in enumerate(self.cross_blocks):
            i = self.num_taps - 1 - k
            x = blk(x, self.projs[i](taps[i]))
        return self.head(self.norm(x))


def hi_end_mae_loss(pred_masked: Tensor, target_masked: Tensor) -> Tensor:
    """MSE of the masked-token predictions to per-patch normalised targets (non-affine
    LayerNorm over the patch vector, biased variance, eps 1e-6)."""
    target = F.layer_norm(target_masked.detach(), target_masked.shape[-1:], eps=1e-6)
    return F.mse_loss(pred_masked, target)


def encode_visible_tokens(backbone: nn.Module, tokens: Tensor, cls_pos: Tensor,
                          ids_keep: Optional[Tensor] = None) -> Tuple[Tensor, List[Tensor]]:
    """Run a :class:`MaskedViT`'s blocks on already embedded patch tokens (+ position).

    ``tokens`` ``[B, L, D]``; keeps ``ids_keep`` (in that order), prepends ``cls_token + cls_pos``.
    Returns the final-norm output and every block's raw output: ``MaskedViT.forward_masked``
    after its patch embedding, for any patch embedding (the 3-D parity test embeds volumes
    itself; tested equal to ``forward_masked`` on images).
    """
    if ids_keep is not None:
        tokens = torch.gather(tokens, 1, ids_keep.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
    cls = (backbone.cls_token + cls_pos).expand(tokens.shape[0], -1, -1)
    h = backbone.pre_norm(backbone.drop_after_pos(torch.cat([cls, tokens], dim=1)))
    hidden = []
    for layer in backbone.layers:
        h = layer(h)
        hidden.append(h)
    return (backbone.ln1(h) if backbone.final_norm else h), hidden


@MODELS.register_module()
class HiEndMAE(BaseSelfSupervisor):
    """Hi-End-MAE (Tang et al., MedIA 2025), 2-D transfer.

    Args:
        backbone: ``mmmask.MaskedViT``.
        neck: ``mmmask.HiEndMAEDecoder``.
        mask_generator: ``mmmask.RandomMasking`` (shuffled visible order, as the official
            ``batched_shuffle_indices``) or another generator with a fixed visible count.
        tap_indices: 0-based encoder blocks whose raw outputs the cross blocks read, shallow →
            deep (official ``(3, 6, 9)`` of 12 = outputs of blocks 4, 7, 10).
        patch_size: for the pixel targets.
    """

    def __init__(self, backbone: dict, neck: dict,
                 mask_generator: dict = dict(type='mmmask.RandomMasking', ratio=0.75),
                 tap_indices: Sequence[int] = (3, 6, 9), patch_size: Optional[int] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None, **kwargs):
        if data_preprocessor is None:
            data_preprocessor = dict(type='mmpretrain.SelfSupDataPreprocessor')
        super().__init__(backbone=backbone, neck=neck, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg, **kwargs)
        if not hasattr(self.backbone, 'forward_masked'):
            raise ValueError("Hi-End-MAE needs an external-mask encoder: backbone=dict(type="
                             "'mmmask.MaskedViT', ...)")
        depth = len(self.backbone.layers)
        self.tap_indices = tuple(int(i) for i in tap_indices)
        if any(not 0 <= i < depth for i in self.tap_indices) or \
                list(self.tap_indices) != sorted(self.tap_indices):
            raise ValueError(f'tap_indices {self.tap_indices} must be ascending 0-based block '
                             f'indices of the {depth}-block encoder')
        if len(self.tap_indices) != self.neck.num_taps:
            raise ValueError(f'{len(self.tap_indices)} tap_indices for a decoder with '
                             f'{self.neck.num_taps} cross blocks')
        self.patch_size = patch_size or self.backbone.patch_embed.projection.kernel_size[0]
        self.mask_generator = MODELS.build(mask_generator)

    def decode_and_loss(self, final: Tensor, hidden: Sequence[Tensor], ids_order: Tensor,
                        num_keep: int, patches: Tensor) -> Tuple[Tensor, Tensor]:
        """Decoder on the encoder outputs + loss against ``patches`` ``[B, L, P]`` (raster
        order). Returns ``(loss, decoder_out [B, 1+L, P])``."""
        out = self.neck(final, [hidden[i] for i in self.tap_indices], ids_order)
        masked_ids = ids_order[:, num_keep:]
        target = torch.gather(patches, 1, masked_ids.unsqueeze(-1).expand(-1, -1,
                                                                          patches.shape[-1]))
        return hi_end_mae_loss(out[:, 1 + num_keep:], target), out

    def loss(self, inputs: Union[Tensor, List[Tensor]], data_samples: List[DataSample],
             **kwargs) -> Dict[str, Tensor]:
        imgs = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        sample = self.mask_generator(imgs.shape[0], tuple(self.backbone.patch_resolution),
                                     imgs.device)
        if isinstance(sample, MaskPair) or sample.ids_keep is None:
            raise ValueError('Hi-End-MAE drops masked tokens and needs one mask with a fixed '
                             'number of visible tokens per image: use mmmask.RandomMasking')
        K = sample.num_keep
        ids_order = torch.argsort(sample.ids_restore, dim=1)
        enc = self.backbone.forward_masked(imgs, ids_keep=ids_order[:, :K])
        loss, _ = self.decode_and_loss(enc.tokens, enc.hidden, ids_order, K,
                                       patchify(imgs, self.patch_size))
        return dict(loss=loss)

    def extract_feat(self, inputs: Tensor, data_samples=None, **kwargs):
        return self.backbone(inputs)
