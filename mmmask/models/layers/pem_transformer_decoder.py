"""PEM transformer decoder (Cavagnero et al., CVPR 2024, §3.2): prototype-based masked
cross-attention, then self-attention and FFN.

Instead of a softmax over every pixel, each query (per head) picks the single most similar pixel
feature inside its current mask — its *prototype* — and is updated from it. Cost is linear in the
number of pixels and the argmax needs no N×Q attention matrix.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor

from mmmask.registry import MODELS


class LocalRepresentation(nn.Module):
    """Memory projection of PEM-CA: norm → depthwise 3×3 conv → flatten (raster) → Linear."""

    def __init__(self, channels: int, norm_cfg: dict = dict(type='SyncBN')) -> None:
        super().__init__()
        self.norm = build_norm_layer(norm_cfg, channels)[1]
        self.dwconv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.linear = nn.Linear(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) → (B, H·W, C)."""
        return self.linear(self.dwconv(self.norm(x)).flatten(2).transpose(1, 2))


class PrototypeCrossAttention(nn.Module):
    """PEM-CA: prototype selection by per-head argmax of cosine similarity inside the mask.

    Args:
        embed_dims: channels C (split into ``num_heads`` groups for the prototype choice).
        num_heads: heads; head k chooses its own prototype pixel from channels
            ``[k·C/h, (k+1)·C/h)``.
        norm_cfg: norm of the memory projection (BN in the paper).

    Official details kept for parity: memory and queries are L2-normalised over *all* channels
    before the head split; a pixel is hidden from a query iff its mask logit is < 0; masking is
    switched off for a batch item only when every query of it is fully hidden (a single fully hidden
    query then takes pixel 0, argmax's first index); the modulated term is normalised over the
    *query* axis (``dim=1`` of (B, Q, C)); the residual adds ``query`` without its position.
    """

    def __init__(self, embed_dims: int, num_heads: int, norm_cfg: dict = dict(type='SyncBN')
                 ) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} must be divisible by num_heads={num_heads}')
        self.num_heads = num_heads
        self.memory_proj = LocalRepresentation(embed_dims, norm_cfg)
        self.query_proj = nn.Sequential(nn.LayerNorm(embed_dims), nn.Linear(embed_dims, embed_dims))
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        self.alpha = nn.Parameter(torch.ones(1, 1, embed_dims))

    def select_prototypes(self, memory: Tensor, query: Tensor,
                          mask_logits: Optional[Tensor] = None) -> Tensor:
        """Gather, per head, the memory token most similar to each query.

        Args:
            memory: (B, N, C) normalised memory tokens.
            query: (B, Q, C) normalised queries.
            mask_logits: (B, Q, H, W) mask logits with H·W = N, or None.

        Returns:
            (B, Q, C) prototypes (each head's channels from its own chosen pixel).
        """
        b, n, c = memory.shape
        q, h = query.shape[1], self.num_heads
        mem = memory.view(b, n, h, c // h).transpose(1, 2)  # (B, h, N, D)
        qry = query.view(b, q, h, c // h).transpose(1, 2)  # (B, h, Q, D)
        sim = mem @ qry.transpose(-1, -2)  # (B, h, N, Q)
        if mask_logits is not None:
            hidden = (mask_logits.detach().flatten(2) < 0).transpose(1, 2)  # (B, N, Q)
            all_hidden = hidden.all(dim=2).all(dim=1)  # (B,): no query sees any pixel
            hidden = hidden & ~all_hidden[:, None, None]
            sim = sim.masked_fill(hidden[:, None], float('-inf'))
        index = sim.argmax(dim=2)  # (B, h, Q)
        protos = torch.gather(mem, 2, index.unsqueeze(-1).expand(-1, -1, -1, c // h))
        return protos.transpose(1, 2).reshape(b, q, c)

    def forward(self, query: Tensor, memory: Tensor, mask_logits: Optional[Tensor],
                memory_pos: Optional[Tensor] = None, query_pos: Optional[Tensor] = None
                ) -> Tensor:
        """Args: query (B, Q, C); memory (B, C, H, W) and its position (B, C, H, W); mask_logits
        (B, Q, H, W) or None; query_pos (B, Q, C). Returns the updated queries (B, Q, C)."""
        if memory_pos is not None:
            memory = memory + memory_pos
        q = query if query_pos is None else query + query_pos
        memory = F.normalize(self.memory_proj(memory), dim=-1)
        q = F.normalize(self.query_proj(q), dim=-1)
        protos = self.select_prototypes(memory, q, mask_logits)
        out = F.normalize(self.proj(protos * q), dim=1) * self.alpha + protos
        return query + self.out_proj(out)


class PEMTransformerDecoderLayer(nn.Module):
    """PEM-CA → self-attention → FFN (pre- or post-norm self-attention/FFN, as Mask2Former)."""

    def __init__(self, embed_dims: int = 256, num_heads: int = 8,
                 feedforward_channels: int = 2048, pre_norm: bool = True, dropout: float = 0.0,
                 norm_cfg: dict = dict(type='SyncBN')) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.cross_attn = PrototypeCrossAttention(embed_dims, num_heads, norm_cfg)
        self.self_attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout,
                                               batch_first=True)
        self.self_attn_norm = nn.LayerNorm(embed_dims)
        self.ffn = nn.Sequential(
            nn.Linear(embed_dims, feedforward_channels), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(feedforward_channels, embed_dims))
        self.ffn_norm = nn.LayerNorm(embed_dims)
        self.dropout = nn.Dropout(dropout)

    def init_weights(self) -> None:
        """Official init: Xavier-uniform matrices in self-attention and FFN; PEM-CA keeps
        PyTorch's defaults (and ``alpha`` = 1)."""
        for module in (self.self_attn, self.ffn):
            for p in module.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)

    def forward(self, query: Tensor, memory: Tensor, mask_logits: Optional[Tensor],
                memory_pos: Optional[Tensor], query_pos: Optional[Tensor]) -> Tensor:
        query = self.cross_attn(query, memory, mask_logits, memory_pos, query_pos)
        # self-attention: position on q and k only; value is the (normed) query itself
        x = self.self_attn_norm(query) if self.pre_norm else query
        qk = x if query_pos is None else x + query_pos
        query = query + self.dropout(self.self_attn(qk, qk, x, need_weights=False)[0])
        if not self.pre_norm:
            query = self.self_attn_norm(query)
        x = self.ffn_norm(query) if self.pre_norm else query
        query = query + self.dropout(self.ffn(x))
        if not self.pre_norm:
            query = self.ffn_norm(query)
        return query


@MODELS.register_module()
class PEMTransformerDecoder(BaseModule):
    """A stack of :class:`PEMTransformerDecoderLayer` plus the final ``post_norm`` LayerNorm
    that the prediction heads apply (the attribute names mmdet's Mask2Former head uses)."""

    def __init__(self, num_layers: int = 6, embed_dims: int = 256, num_heads: int = 8,
                 feedforward_channels: int = 2048, pre_norm: bool = True, dropout: float = 0.0,
                 norm_cfg: dict = dict(type='SyncBN', requires_grad=True), init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_layers = num_layers
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.layers = nn.ModuleList(
            PEMTransformerDecoderLayer(embed_dims, num_heads, feedforward_channels, pre_norm,
                                       dropout, norm_cfg) for _ in range(num_layers))
        self.post_norm = nn.LayerNorm(embed_dims)

    def init_weights(self) -> None:
        if self.init_cfg is not None:
            return super().init_weights()
        for layer in self.layers:
            layer.init_weights()
