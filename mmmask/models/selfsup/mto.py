"""MTO: Masked Token Optimization (Choi et al., "Emerging Property of Masked Token for Effective
Pre-training", ECCV 2024, arXiv 2404.08330), as a plug-in on SimMIM-style mask-token MIM.

No official code was found and the paper's formulas could not be read here: the terms below are
our reading of the abstract/TL;DR ("data singularity" of masked tokens, an entropy-based
heterogeneity measure, weight recalibration, losses L_spa, L_e, L_r). Every piece is switchable
so a config runs the plain SimMIM baseline; see configs/mto/README.md (UNVERIFIED) for the exact
definitions and what each assumes.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.models.utils import resize_pos_embed
from torch import Tensor

from mmmask.registry import MODELS
from ..masking import MaskPair, MaskSample

__all__ = ['MTO']


@MODELS.register_module()
class MTO(BaseSelfSupervisor):
    """SimMIM (mask token in the encoder, linear pixel-shuffle decoder, L1 on masked pixels) with
    masked token optimisation (UNVERIFIED reading of Choi et al., ECCV 2024).

    Args:
        backbone: :class:`mmmask.MaskedViT` with ``mask_token=True``.
        neck: decoder from the patch-token map ``[B, D, h, w]`` to pixels (mmpretrain
            ``SimMIMLinearDecoder``).
        head: mmpretrain ``SimMIMHead`` (L1 on masked pixels).
        mask_generator: any token generator (``mmmask.CoarseRandomMasking`` = SimMIM's,
            ``mmmask.BlockwiseMasking``, ``mmmask.RandomMasking``).
        recalibrate: weight recalibration — in the attention of the ``recalib_layers`` blocks, the
            weights that *visible* queries put on *masked* keys are multiplied by
            ``recalib_gamma`` (0: removed) and the rows renormalised, so masked tokens carry no
            data into visible tokens ("data singularity").
        recalib_layers: 0-based blocks recalibrated (None: all).
        recalib_gamma: residual weight kept on masked keys (0 = hard exclusion).
        loss_spa: weight of L_spa, the attention mass that masked queries put on *other* masked
            tokens (sparsity of masked→masked attention).
        loss_e: weight of L_e, minus the normalised entropy of the attention of masked queries
            over the visible keys (entropy heterogeneity: masked tokens gather broad context).
        loss_r: weight of L_r, the mean squared cosine similarity between the mask token and the
            visible patch embeddings (masked token decorrelated from data tokens).
        loss_layers: 0-based blocks whose attention feeds L_spa / L_e (None: all).
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 mask_generator: dict = dict(type='mmmask.CoarseRandomMasking', ratio=0.6,
                                             mask_patch_size=32, model_patch_size=16),
                 recalibrate: bool = True, recalib_layers: Optional[Sequence[int]] = None,
                 recalib_gamma: float = 0.0, loss_spa: float = 0.1, loss_e: float = 0.1,
                 loss_r: float = 0.1, loss_layers: Optional[Sequence[int]] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg=None, **kwargs):
        if data_preprocessor is None:
            data_preprocessor = dict(type='mmpretrain.SelfSupDataPreprocessor')
        super().__init__(backbone=backbone, neck=neck, head=head,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg, **kwargs)
        if getattr(self.backbone, 'mask_token', None) is None:
            raise ValueError('MTO needs a mask-token encoder: backbone=dict(type='
                             "'mmmask.MaskedViT', mask_token=True, ...)")
        self.mask_generator = MODELS.build(mask_generator)
        depth = len(self.backbone.layers)
        all_layers = tuple(range(depth))
        self.recalib_layers = set(all_layers if recalib_layers is None else
                                  (i % depth for i in recalib_layers)) if recalibrate else set()
        self.loss_layers = set(all_layers if loss_layers is None else
                               (i % depth for i in loss_layers))
        if not 0.0 <= recalib_gamma <= 1.0:
            raise ValueError('recalib_gamma must be in [0, 1]')
        self.recalib_gamma = recalib_gamma
        self.w_spa, self.w_e, self.w_r = loss_spa, loss_e, loss_r

    # ------------------------------------------------------------------ encoder
    def _attention_bias(self, token_mask: Tensor, dtype) -> Tensor:
        """``[B, 1, N, N]`` additive logit bias: ``log(gamma)`` on (visible query, masked key)."""
        B, L = token_mask.shape
        masked = torch.cat([token_mask.new_zeros(B, 1), token_mask], dim=1)  # cls is visible
        pair = (~masked)[:, :, None] & masked[:, None, :]
        value = float('-inf') if self.recalib_gamma == 0 else float(
            torch.log(torch.tensor(self.recalib_gamma)))
        bias = torch.zeros(pair.shape, dtype=dtype, device=token_mask.device)
        return bias.masked_fill(pair, value)[:, None]

    def _block(self, layer, h: Tensor, bias: Optional[Tensor],
               need_probs: bool) -> Tuple[Tensor, Optional[Tensor]]:
        """One mmpretrain ``TransformerEncoderLayer`` with an optional attention bias; returns the
        output and (when asked) the attention probabilities ``[B, heads, N, N]``."""
        attn = layer.attn
        x = layer.ln1(h)
        B, N, _ = x.shape
        qkv = attn.qkv(x).reshape(B, N, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        probs = None
        if need_probs:
            logits = (q * q.shape[-1]**-0.5) @ k.transpose(-2, -1)
            if bias is not None:
                logits = logits + bias
            probs = logits.softmax(-1)
            dropped = F.dropout(probs, attn.attn_drop, self.training) if attn.attn_drop else probs
            out = dropped @ v
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=bias, dropout_p=attn.attn_drop if self.training else 0.)
        out = attn.proj(out.transpose(1, 2).reshape(B, N, -1))
        out = attn.out_drop(attn.gamma1(attn.proj_drop(out)))
        if getattr(attn, 'v_shortcut', False):
            raise ValueError('MTO does not support v_shortcut attention')
        h = h + out
        h = layer.ffn(layer.ln2(h), identity=h)
        return h, probs

    def encode(self, x: Tensor, token_mask: Tensor,
               need_probs: bool = True) -> Tuple[Tensor, Dict[int, Tensor], Tensor]:
        """Encode with mask tokens; returns final-norm tokens ``[B, 1+L, D]``, the attention
        probabilities of ``loss_layers`` and the patch embeddings (before the mask token)."""
        bb = self.backbone
        patches, grid = bb.patch_embed(x)
        w = token_mask.unsqueeze(-1).to(patches.dtype)
        tokens = patches * (1 - w) + bb.mask_token.to(patches.dtype) * w
        pos = resize_pos_embed(bb.pos_embed, bb.patch_resolution, grid, mode=bb.interpolate_mode,
                               num_extra_tokens=bb.num_extra_tokens)
        h = torch.cat([bb.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1) + pos
        h = bb.pre_norm(bb.drop_after_pos(h))
        bias = self._attention_bias(token_mask, h.dtype) if self.recalib_layers else None
        maps = {}
        for i, layer in enumerate(bb.layers):
            want = need_probs and i in self.loss_layers
            h, probs = self._block(layer, h, bias if i in self.recalib_layers else None, want)
            if want:
                maps[i] = probs
        if bb.final_norm:
            h = bb.ln1(h)
        return h, maps, patches

    # ------------------------------------------------------------------ MTO terms
    @staticmethod
    def sparsity_loss(probs: Tensor, masked: Tensor) -> Tensor:
        """L_spa: attention mass of masked queries on other masked keys (``masked`` [B, N])."""
        N = masked.shape[1]
        other = masked[:, None, :] & ~torch.eye(N, dtype=torch.bool, device=masked.device)
        mass = (probs * other[:, None].to(probs.dtype)).sum(-1)  # [B, heads, N]
        q = masked[:, None].expand_as(mass).to(probs.dtype)
        return (mass * q).sum() / q.sum().clamp_min(1)

    @staticmethod
    def entropy_loss(probs: Tensor, masked: Tensor) -> Tensor:
        """L_e: minus the entropy (normalised by log #visible) of the attention of masked
        queries renormalised over the visible keys."""
        vis = (~masked)[:, None, None, :].to(probs.dtype)
        p = probs * vis
        p = p / p.sum(-1, keepdim=True).clamp_min(1e-12)
        ent = -(p * p.clamp_min(1e-12).log()).sum(-1)  # [B, heads, N]
        n_vis = (~masked).sum(1).clamp_min(2).to(probs.dtype)
        ent = ent / n_vis.log()[:, None, None]
        q = masked[:, None].expand_as(ent).to(probs.dtype)
        return -(ent * q).sum() / q.sum().clamp_min(1)

    def singularity_loss(self, patches: Tensor, token_mask: Tensor) -> Tensor:
        """L_r: mean squared cosine between the mask token and visible patch embeddings."""
        cos = F.cosine_similarity(patches, self.backbone.mask_token.to(patches.dtype), dim=-1)
        vis = (~token_mask).to(cos.dtype)
        return (cos.pow(2) * vis).sum() / vis.sum().clamp_min(1)

    # ------------------------------------------------------------------ training
    def loss(self, inputs: Union[Tensor, List[Tensor]], data_samples=None,
             **kwargs) -> Dict[str, Tensor]:
        x = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        B, _, H, W = x.shape
        grid = tuple(self.backbone.patch_resolution)
        stride = self.backbone.patch_embed.projection.stride
        if (H, W) != (grid[0] * stride[0], grid[1] * stride[1]):
            raise ValueError(f'MTO: input {H}x{W} must match the backbone img_size')
        sample = self.mask_generator(B, tuple(grid), x.device)
        if isinstance(sample, MaskPair) or not isinstance(sample, MaskSample) \
                or sample.mask is None:
            raise ValueError(f'{type(self.mask_generator).__name__} is not a token generator; '
                             'MTO needs a [B, L] token mask (e.g. mmmask.CoarseRandomMasking)')
        token_mask = sample.mask
        if token_mask.shape != (B, grid[0] * grid[1]):
            raise ValueError(f'MTO: mask must be [B, L] = {(B, grid[0] * grid[1])}, got '
                             f'{tuple(token_mask.shape)}')
        need = bool(self.w_spa or self.w_e)
        tokens, maps, patches = self.encode(x, token_mask, need_probs=need)
        fmap = tokens[:, self.backbone.num_extra_tokens:].transpose(1, 2).reshape(
            B, -1, grid[0], grid[1])
        pred = self.neck(fmap)
        losses = dict(loss_rec=self.head.loss(pred, x, token_mask.reshape(B, *grid).float()))
        masked = torch.cat([token_mask.new_zeros(B, 1), token_mask], dim=1)
        if self.w_spa:
            losses['loss_spa'] = self.w_spa * torch.stack(
                [self.sparsity_loss(p, masked) for p in maps.values()]).mean()
        if self.w_e:
            losses['loss_e'] = self.w_e * torch.stack(
                [self.entropy_loss(p, masked) for p in maps.values()]).mean()
        if self.w_r:
            losses['loss_r'] = self.w_r * self.singularity_loss(patches, token_mask)
        return losses

    def extract_feat(self, inputs: Tensor):
        return self.backbone(inputs)
