"""CMAE: the 2-D transfer of Point-CMAE (Ren et al., "Bringing Masked Autoencoders Explicit
Contrastive Properties for Point Cloud Self-Supervised Learning", ACCV 2024, arXiv 2407.05862,
github.com/Amazingren/Point-CMAE).

Two independent random masks of the same image go through one shared encoder (MAE-style, visible
tokens only) and two MAE decoders (own mask token, own position embedding). Each branch has a
pixel reconstruction loss; on top, the decoders' last-block features (before the final norm) at
tokens masked in *both* branches are pulled together (co-masked consistency, 1 - cosine).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.models.utils import build_2d_sincos_position_embedding
from torch import Tensor, nn

from mmmask.registry import MODELS
from ..masking import MaskPair, MaskSample

__all__ = ['CMAE', 'CMAEDecoder', 'comasked_consistency', 'convert_point_cmae_decoder']


def convert_point_cmae_decoder(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Point-CMAE ``TransformerDecoder`` keys (timm ``Block``: ``blocks.i.norm1/attn/norm2/mlp``,
    ``norm``) → :class:`CMAEDecoder` keys (mmpretrain ``TransformerEncoderLayer``)."""
    import re
    rules = [(r'blocks\.(\d+)\.norm1\.', r'blocks.\1.ln1.'),
             (r'blocks\.(\d+)\.norm2\.', r'blocks.\1.ln2.'),
             (r'blocks\.(\d+)\.mlp\.fc1\.', r'blocks.\1.ffn.layers.0.0.'),
             (r'blocks\.(\d+)\.mlp\.fc2\.', r'blocks.\1.ffn.layers.1.')]
    out = {}
    for k, v in state_dict.items():
        for p, r in rules:
            k = re.sub(p, r, k)
        out[k] = v
    return out


def comasked_consistency(feats1: Tensor, ids_restore1: Tensor, feats2: Tensor,
                         ids_restore2: Tensor, co_mask: Tensor, mode: str = 'all_pairs',
                         eps: float = 1e-8) -> Tuple[Tensor, Dict[str, Tensor]]:
    """Co-masked consistency of Point-CMAE.

    ``feats*``: ``[B, L, C]`` decoder features in decoder layout ``[visible..., masked...]``;
    ``ids_restore*`` gathers them back to raster order (the official scatter to group order);
    both are then L2-normalised. ``co_mask``: ``[B, L]`` bool, masked in both branches.

    ``mode='all_pairs'`` is the official code: the co-mask is broadcast over the second branch's
    tokens, so every co-masked token of branch 1 is pulled to *every* token of branch 2,
    ``Σ_{b,i∈co,j} (1 − cos(f1_bi, f2_bj) + eps) / (L · Σ|co|)``. ``mode='matched'`` is the
    paper's text: ``Σ_{b,i∈co} (1 − cos(f1_bi, f2_bi)) / Σ|co|``. No stop-gradient.
    Returns the loss and ``dict(feats1, feats2, cos_sim)`` (normalised raster features).
    """
    C = feats1.shape[-1]
    f1 = F.normalize(torch.gather(feats1, 1, ids_restore1.unsqueeze(-1).expand(-1, -1, C)), dim=-1)
    f2 = F.normalize(torch.gather(feats2, 1, ids_restore2.unsqueeze(-1).expand(-1, -1, C)), dim=-1)
    extras = dict(feats1=f1, feats2=f2)
    if mode == 'all_pairs':
        cos = torch.bmm(f1, f2.transpose(1, 2))
        w = co_mask.unsqueeze(-1).expand(-1, -1, cos.shape[-1]).to(cos.dtype)
        loss = (w * (1 - cos + eps)).sum() / w.sum().clamp_min(1)
        extras['cos_sim'] = cos
    elif mode == 'matched':
        cos = (f1 * f2).sum(-1)
        w = co_mask.to(cos.dtype)
        loss = (w * (1 - cos)).sum() / w.sum().clamp_min(1)
        extras['cos_sim'] = cos
    else:
        raise ValueError(f"unknown contrast mode {mode!r}; use 'all_pairs' (official code) or "
                         "'matched' (paper text)")
    return loss, extras


@MODELS.register_module()
class CMAEDecoder(BaseModule):
    """MAE pixel decoder with Point-CMAE's ``TransformerDecoder`` semantics: tokens in decoder
    layout ``[visible (encoder order)..., mask tokens (masked order)...]`` (no cls token), the
    position embedding re-added before **every** block (``block(x + pos)``), qkv without bias,
    final LayerNorm, then a linear patch predictor (the 2-D stand-in for Point-CMAE's
    ``increase_dim`` point head).

    Args:
        num_patches / patch_size / in_chans: token grid and pixel target size.
        embed_dim: encoder width; decoder_embed_dim / decoder_depth / decoder_num_heads: decoder.
        pos_every_block: False adds the position embedding once (MAE's decoder).
        learnable_pos: learned position embedding (Point-CMAE's per-decoder pos-MLP is learned);
            False = fixed 2-D sin-cos (MAE).
    """

    def __init__(self, num_patches: int = 196, patch_size: int = 16, in_chans: int = 3,
                 embed_dim: int = 768, decoder_embed_dim: int = 512, decoder_depth: int = 8,
                 decoder_num_heads: int = 16, mlp_ratio: float = 4., qkv_bias: bool = False,
                 drop_path_rate: float = 0., norm_eps: float = 1e-5,
                 pos_every_block: bool = True, learnable_pos: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(init_cfg)
        self.num_patches, self.pos_every_block = num_patches, pos_every_block
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, num_patches, decoder_embed_dim),
                                              requires_grad=learnable_pos)
        self.learnable_pos = learnable_pos
        dpr = torch.linspace(0, drop_path_rate, decoder_depth).tolist()
        norm_cfg = dict(type='LN', eps=norm_eps)
        self.blocks = nn.ModuleList([
            TransformerEncoderLayer(decoder_embed_dim, decoder_num_heads,
                                    int(decoder_embed_dim * mlp_ratio), drop_path_rate=dpr[i],
                                    qkv_bias=qkv_bias, norm_cfg=norm_cfg)
            for i in range(decoder_depth)
        ])
        self.norm = nn.LayerNorm(decoder_embed_dim, eps=norm_eps)
        self.decoder_pred = nn.Linear(decoder_embed_dim, patch_size**2 * in_chans)

    def init_weights(self) -> None:
        super().init_weights()
        h = int(self.num_patches**.5)
        if not self.learnable_pos and h * h == self.num_patches:
            pos = build_2d_sincos_position_embedding(h, self.decoder_pos_embed.shape[-1],
                                                     cls_token=False)
            self.decoder_pos_embed.data.copy_(pos.float())
        else:
            nn.init.normal_(self.decoder_pos_embed, std=.02)
        nn.init.normal_(self.mask_token, std=.02)

    def forward_blocks(self, x: Tensor, pos: Tensor) -> Tensor:
        """The blocks on decoder-layout tokens ``x`` with positions ``pos``; returns the raw
        last-block output (Point-CMAE's ``de_feats``)."""
        if not self.pos_every_block:
            x = x + pos
        for blk in self.blocks:
            x = blk(x + pos) if self.pos_every_block else blk(x)
        return x

    def forward(self, latent: Tensor, sample: MaskSample) -> Tuple[Tensor, Tensor]:
        """``latent``: encoder output ``[B, 1+K, E]`` (cls first, visible tokens in
        ``sample.ids_keep`` order). Returns ``(pred [B, L, p²C], feats [B, L, D])``: pixel
        predictions in raster order and the pre-norm last-block features in decoder layout."""
        x = self.decoder_embed(latent[:, 1:])
        B, K, D = x.shape
        L = sample.ids_restore.shape[1]
        order = torch.argsort(sample.ids_restore, dim=1)  # [ids_keep, ids_masked]
        full = torch.cat([x, self.mask_token.to(x.dtype).expand(B, L - K, -1)], dim=1)
        pos = torch.gather(self.decoder_pos_embed.expand(B, -1, -1), 1,
                           order.unsqueeze(-1).expand(-1, -1, D))
        feats = self.forward_blocks(full, pos)
        pred = self.decoder_pred(self.norm(feats))
        pred = torch.gather(pred, 1, sample.ids_restore.unsqueeze(-1).expand(-1, -1,
                                                                             pred.shape[-1]))
        return pred, feats


@MODELS.register_module()
class CMAE(BaseSelfSupervisor):
    """CMAE (2-D Point-CMAE, Ren et al., ACCV 2024).

    Args:
        backbone: ``mmmask.MaskedViT`` shared by both branches.
        neck: :class:`CMAEDecoder` config; built twice (one decoder per branch).
        head: mmpretrain ``MAEPretrainHead`` (norm-pix MSE on masked patches), shared.
        mask_generator: ``mmmask.DoubleMasking`` (two draws with equal visible counts).
        contrast_weight: λ of the co-masked term. Point-CMAE uses 1000·(CD₁+CD₂) + L_con,
            i.e. reconstruction and contrast of similar size (both ≈1); with norm-pix MSE
            (≈1) the same balance is λ = 1.
        contrast_mode: ``all_pairs`` (official code) or ``matched`` (paper text), see
            :func:`comasked_consistency`.
        separate_cls_tokens: a second cls token for branch 2 (official: ``cls_token1/2``). The
            backbone keeps branch 1's, so checkpoints stay mmpretrain ViT checkpoints.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 mask_generator: dict = dict(type='mmmask.DoubleMasking',
                                             generator=dict(type='mmmask.RandomMasking',
                                                            ratio=0.75)),
                 contrast_weight: float = 1.0, contrast_mode: str = 'all_pairs',
                 separate_cls_tokens: bool = True, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(backbone=backbone, neck=neck, head=head,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        from mmpretrain.registry import MODELS as PRETRAIN_MODELS
        self.neck2 = PRETRAIN_MODELS.build(neck)
        self.mask_generator = MODELS.build(mask_generator)
        if contrast_mode not in ('all_pairs', 'matched'):
            raise ValueError(f"unknown contrast_mode {contrast_mode!r}; use 'all_pairs' or "
                             "'matched'")
        self.contrast_weight, self.contrast_mode = contrast_weight, contrast_mode
        self.cls_token2 = (nn.Parameter(torch.zeros(1, 1, self.backbone.embed_dims))
                           if separate_cls_tokens else None)

    def init_weights(self) -> None:
        super().init_weights()
        if self.cls_token2 is not None:
            nn.init.normal_(self.cls_token2, std=.02)

    def encode(self, img: Tensor, samples: Sequence[MaskSample]) -> List[Tensor]:
        """Shared encoder on each branch's visible tokens (one batched pass when the visible
        counts agree). Returns final-norm ``[B, 1+K, E]`` per branch."""
        bb = self.backbone
        tokens, _, cls_pos = bb.embed(img)
        B, _, E = tokens.shape
        cls = [bb.cls_token, self.cls_token2 if self.cls_token2 is not None else bb.cls_token]
        seqs = []
        for s, c in zip(samples, cls):
            vis = torch.gather(tokens, 1, s.ids_keep.unsqueeze(-1).expand(-1, -1, E))
            seqs.append(torch.cat([(c + cls_pos).expand(B, -1, -1), vis], dim=1))
        groups = [torch.cat(seqs)] if seqs[0].shape == seqs[1].shape else seqs
        outs = []
        for h in groups:
            h = bb.pre_norm(bb.drop_after_pos(h))
            for layer in bb.layers:
                h = layer(h)
            outs.append(bb.ln1(h) if bb.final_norm else h)
        return list(outs[0].chunk(2)) if len(outs) == 1 else outs

    def forward_train(self, img: Tensor) -> Dict[str, object]:
        """Intermediate results of one step (used by :meth:`loss` and the tests)."""
        B = img.shape[0]
        stride = self.backbone.patch_embed.projection.stride
        grid = (img.shape[-2] // stride[0], img.shape[-1] // stride[1])
        pair = self.mask_generator(B, grid, img.device)
        if not isinstance(pair, MaskPair):
            raise ValueError('CMAE needs two masks: use mask_generator=dict(type='
                             "'mmmask.DoubleMasking', generator=...)")
        samples = [pair.first, pair.second]
        if any(s.ids_keep is None for s in samples):
            raise ValueError('CMAE drops masked tokens: the inner generator must keep a fixed '
                             'number of tokens (e.g. mmmask.RandomMasking)')
        lat1, lat2 = self.encode(img, samples)
        pred1, feats1 = self.neck(lat1, samples[0])
        pred2, feats2 = self.neck2(lat2, samples[1])
        co = pair.co_mask
        con, extras = comasked_consistency(feats1, samples[0].ids_restore, feats2,
                                           samples[1].ids_restore, co, self.contrast_mode)
        return dict(pair=pair, preds=(pred1, pred2), feats=(feats1, feats2), contrast=con,
                    contrast_extras=extras)

    def extract_feat(self, inputs: Tensor):
        return self.backbone(inputs)

    def loss(self, inputs: Union[Tensor, List[Tensor]], data_samples=None,
             **kwargs) -> Dict[str, Tensor]:
        img = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        res = self.forward_train(img)
        pair = res['pair']
        losses = dict(
            loss_rec1=self.head.loss(res['preds'][0], img, pair.first.mask.float()),
            loss_rec2=self.head.loss(res['preds'][1], img, pair.second.mask.float()),
            loss_contrast=self.contrast_weight * res['contrast'])
        with torch.no_grad():  # the method signal: position-matched cosine on co-masked tokens
            e = res['contrast_extras']
            co = pair.co_mask.float()
            cos = (e['feats1'] * e['feats2']).sum(-1)
            losses['comask_cos'] = (cos * co).sum() / co.sum().clamp_min(1)
        return losses
