"""Sparsifiner: Learning Sparse Instance-Dependent Attention for Efficient Vision Transformers
(Wei et al., CVPR 2023, arXiv:2303.13755; official code github.com/lim142857/Sparsifiner).

A DeiT/ViT in which every layer predicts, from its own queries and keys, a sparse *connectivity
mask* with a cheap low-rank attention approximation, and the real attention is computed only on
the predicted connections. In mmmask the predictor is a *bias provider*
(:class:`SparsifinerConnectivity`) of the shared :class:`~mmmask.models.layers.BiasedSelfAttention`
that returns a :class:`~mmmask.models.layers.attention_bias.MaskedBias` (-inf outside the mask).

Per layer, with per-head ``q, k`` of shape ``(B, H, N, d)`` (N includes CLS), §3 of the paper:

1. ``q~ = q W_q``, ``k~ = k W_k`` (``d -> d / reduce_c_factor``, one Linear shared by the heads);
2. ``k^ = k~ᵀ P_n`` with ``P_n ∈ R^{N×r}``, ``r = N // reduce_n_factor`` (token-basis projection);
3. cheap attention ``C = softmax(q~ k^ · num_heads^-½)`` over the r basis vectors — the scale uses
   the *number of heads*, not the head width (official quirk), and the CLS query row is dropped;
4. at inference / in phase 2 only the top-``coef_topk`` coefficients per row are kept (no
   renormalisation); the basis ``B = threshold(|P_backᵀ|, basis_threshold)`` (raw signed ``P_backᵀ``
   while reconstructing);
5. approximate attention ``A^ = C B`` ``(B, H, N-1, N)``; the connectivity mask keeps the
   top-``ceil(keep·N)`` entries per row, the CLS query row is dense, and the mask is detached.

Training has two phases (official ``TRAIN_STRATEGY``): phase 1 (``phase=1``) trains only the
predictors with the attention-reconstruction loss ``Σ_l MSE_sum(A^_l, A_l[:, :, 1:]) / L`` while
the backbone runs *dense* attention; phase 2 (``phase=2``) applies the masks and trains the
backbone with CE + distillation (the predictors get no gradient through the detached mask, so
they are frozen here). The phase is a switch on the model (:meth:`Sparsifiner.set_phase`); the
loss side lives in :mod:`mmmask.engine.hooks.sparsifiner_hook` (``SparsifinerClassifier``,
``SparsifinerReconLoss``, ``SparsifinerPhaseHook``).

Optional token pruning (DynamicViT-style, official ``TOKEN_PRUNING_LOC``): after a pruning layer
the patch tokens with the lowest mean CLS attention are dropped (zeroed) — implemented through a
:class:`PrunedMaskedBias`, which reproduces the official zeroing of ``q, k, v`` of pruned tokens
inside the logits/probabilities.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models.backbones import VisionTransformer
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor, nn

from ...registry import MODELS
from ..layers.attention_bias import MaskedBias
from ..layers.biased_attention import swap_attention

__all__ = ['SparsifinerConnectivity', 'PrunedMaskedBias', 'Sparsifiner', 'mhsa_flops']


class PrunedMaskedBias(MaskedBias):
    """A connectivity mask plus dropped tokens (Sparsifiner token pruning).

    The official attention zeroes ``q``, ``k`` and ``v`` of pruned patch tokens. Zero ``q_i`` or
    ``k_j`` makes the logit ``(i, j)`` exactly 0 — done here in :meth:`apply` — and zero ``v_j``
    equals a zero probability column ``j`` in ``P V`` — done in :meth:`finalize`. The map before
    that column zeroing (the official ``masked_attn``) is kept in :attr:`probs`.

    Args:
        keep: bool connectivity mask ``(B, heads, N, N)``.
        tokens: bool ``(B, N)``, False for pruned tokens (CLS always True).
    """

    def __init__(self, keep: Tensor, tokens: Tensor) -> None:
        super().__init__(keep)
        self.tokens = tokens
        self.probs: Optional[Tensor] = None

    def apply(self, logits: Tensor, transpose: bool = False) -> Tensor:
        t = self.tokens
        pair = t[:, None, :, None] & t[:, None, None, :]
        if transpose:
            pair = pair.transpose(-1, -2)
        return super().apply(logits.masked_fill(~pair, 0.), transpose)

    def finalize(self, probs: Tensor) -> Tensor:
        probs = super().finalize(probs)
        self.probs = probs
        return probs.masked_fill(~self.tokens[:, None, None, :], 0.)


class SparsifinerConnectivity(nn.Module):
    """Sparsifiner's connectivity predictor as a bias provider (official ``MaskPredictor``).

    Called as ``provider(x=x, q=q, k=k, hw=hw)`` by :class:`BiasedSelfAttention`; returns a
    :class:`MaskedBias` (or :class:`PrunedMaskedBias` when :attr:`token_mask` is set), or ``None``
    while reconstructing (``recon=True`` and training: dense attention, mask not applied). What
    the losses and analyses need is left in :attr:`last` after each call: ``approx_attn``
    ``(B,H,N-1,N)``, ``basis_coef`` ``(B,H,N-1,r)``, ``keep`` (bool mask incl. the CLS row),
    ``basis``, the returned ``bias``, and with :attr:`record_dense` the dense softmax
    ``unmasked_attn``.

    Args:
        embed_dims, num_heads: of the attention; ``head_dims = embed_dims // num_heads``.
        num_tokens: N including CLS (the token-basis projections are ``N × r``: fixed input size).
        attn_keep_rate: connections kept per query row, budget ``ceil(keep · N)``.
        reduce_n_factor: ``r = N // reduce_n_factor`` basis tokens.
        reduce_c_factor: ``head_dims // reduce_c_factor`` reduced channels.
        share_inout_proj: use ``P_n`` also as ``P_back`` (official option).
        basis_threshold: threshold on ``|P_back|`` (0.02 in the default yaml).
        coef_topk: keep this many basis coefficients per row (8); ``None`` thresholds them at
            ``coef_threshold`` instead (official ``BASIS_COEF.USE_TOPK=False``).
        conn_threshold: ``None`` for top-k connectivity (default); a float keeps
            ``A^ > conn_threshold`` (official ``ATTN_SCORE.USE_TOPK=False``).
        prune_attn_rows: zero the mask rows of pruned query tokens (``PRUNE_ATTN_MATRIX_ROW``).
        attn_scale: scale of the real logits (``head_dims^-½``), only for :attr:`record_dense`.
        detach_qk: the reconstruction loss does not reach the backbone through ``q, k``. The
            official schedule never updates the backbone with it (phase 1 optimises only the
            predictors, phase 2 detaches the mask), so this changes nothing there; it keeps the
            loss from pulling the backbone when both are trained together (toy config).
    """

    def __init__(self, embed_dims: int, num_heads: int, num_tokens: int,
                 attn_keep_rate: float = 0.25, reduce_n_factor: float = 8,
                 reduce_c_factor: int = 2, share_inout_proj: bool = False,
                 basis_threshold: float = 0.02, coef_topk: Optional[int] = 8,
                 coef_threshold: float = 0.05, conn_threshold: Optional[float] = None,
                 prune_attn_rows: bool = False, attn_scale: Optional[float] = None,
                 detach_qk: bool = True) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by num_heads={num_heads}')
        self.num_heads, self.num_tokens = num_heads, num_tokens
        self.head_dims = embed_dims // num_heads
        self.reduced_c = self.head_dims // reduce_c_factor
        self.reduced_n = int(num_tokens // reduce_n_factor)
        if self.reduced_c < 1 or self.reduced_n < 1:
            raise ValueError(f'Sparsifiner predictor: reduce factors leave {self.reduced_c} '
                             f'channels / {self.reduced_n} basis tokens; lower reduce_c_factor / '
                             'reduce_n_factor')
        if coef_topk is not None and coef_topk > self.reduced_n:
            raise ValueError(f'coef_topk={coef_topk} > {self.reduced_n} basis tokens '
                             f'(N={num_tokens} // reduce_n_factor={reduce_n_factor}); lower '
                             'reduce_n_factor or coef_topk')
        self.scale = num_heads**-0.5  # official quirk: heads, not head width
        self.attn_scale = self.head_dims**-0.5 if attn_scale is None else attn_scale
        self.proj_c_q = nn.Linear(self.head_dims, self.reduced_c)
        self.proj_c_k = nn.Linear(self.head_dims, self.reduced_c)
        self.proj_n = nn.Parameter(torch.zeros(num_tokens, self.reduced_n))
        trunc_normal_(self.proj_n, std=.02)
        self.share_inout_proj = share_inout_proj
        if share_inout_proj:
            self.proj_back_n = self.proj_n
        else:
            self.proj_back_n = nn.Parameter(torch.zeros(num_tokens, self.reduced_n))
            trunc_normal_(self.proj_back_n, std=.02)
        for lin in (self.proj_c_q, self.proj_c_k):
            trunc_normal_(lin.weight, std=.02)
            nn.init.zeros_(lin.bias)
        self.attn_keep_rate = attn_keep_rate
        self.attn_budget = math.ceil(attn_keep_rate * num_tokens)
        self.basis_threshold = basis_threshold
        self.coef_topk, self.coef_threshold = coef_topk, coef_threshold
        self.conn_threshold = conn_threshold
        self.prune_attn_rows = prune_attn_rows
        self.detach_qk = detach_qk
        #: phase-1 switch: while training, dense attention and raw signed basis
        self.recon = False
        #: bool ``(B, N-1)`` of kept patch tokens, set by the backbone before each call
        self.token_mask: Optional[Tensor] = None
        #: also compute the dense softmax (official ``unmasked_attn``) into :attr:`last`
        self.record_dense = False
        self.last: Dict[str, Tensor] = {}

    @property
    def reconstructing(self) -> bool:
        return self.training and self.recon

    def basis(self) -> Tensor:
        """``(r, N)``: raw ``P_backᵀ`` while reconstructing, else ``|P_backᵀ|`` thresholded."""
        basis = self.proj_back_n.t()
        if self.reconstructing:
            return basis
        basis = basis.abs()
        return basis.masked_fill(basis <= self.basis_threshold, 0.)

    def approximate(self, q: Tensor, k: Tensor,
                    token_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """``(approx_attn (B,H,N-1,N), basis_coef (B,H,N-1,r), basis (r,N))`` from q, k."""
        if q.shape[-2] != self.num_tokens:
            raise ValueError(f'Sparsifiner predictor built for {self.num_tokens} tokens got '
                             f'{q.shape[-2]}: the input size must equal the backbone img_size')
        qc, kc = self.proj_c_q(q), self.proj_c_k(k)
        if token_mask is not None:
            drop = ~token_mask[:, None, :, None]
            qc = torch.cat([qc[..., :1, :], qc[..., 1:, :].masked_fill(drop, 0.)], dim=-2)
            kc = torch.cat([kc[..., :1, :], kc[..., 1:, :].masked_fill(drop, 0.)], dim=-2)
        k_basis = kc.transpose(-1, -2) @ self.proj_n  # (B, H, c, r)
        basis = self.basis()
        cheap = (qc[..., 1:, :] @ k_basis) * self.scale  # CLS query row dropped
        coef = cheap.softmax(dim=-1)
        if not self.reconstructing:
            if self.coef_topk is not None:
                values, index = coef.topk(self.coef_topk, dim=-1, sorted=False)
                coef = torch.zeros_like(coef).scatter_(-1, index, values)
            elif self.coef_threshold > 0:
                coef = coef.masked_fill(coef <= self.coef_threshold, 0.)
        return coef @ basis, coef, basis

    def connectivity(self, approx: Tensor, token_mask: Optional[Tensor] = None) -> Tensor:
        """Bool mask ``(B, H, N, N)``: top-budget (or thresholded) entries of ``approx`` per
        query row, pruned key columns excluded, dense CLS row. Never carries gradients."""
        approx = approx.detach()
        b, h, n1, n = approx.shape
        budget = self.attn_budget
        if token_mask is not None:
            # official: the budget shrinks to the kept-token count of sample 0 (min with budget)
            budget = min(int(token_mask[0].sum()), budget)
            score = torch.cat([approx[..., :1], approx[..., 1:].masked_fill(
                ~token_mask[:, None, None, :], float('-inf'))], dim=-1)
        else:
            score = approx
        if self.conn_threshold is None:
            index = score.topk(budget, dim=-1, sorted=False)[1]
            keep = torch.zeros(score.shape, dtype=torch.bool, device=score.device)
            keep.scatter_(-1, index, True)
        else:
            keep = score > self.conn_threshold
        if token_mask is not None and self.prune_attn_rows:
            keep = keep & token_mask[:, None, :, None]
        cls_row = torch.ones(b, h, 1, n, dtype=torch.bool, device=keep.device)
        return torch.cat([cls_row, keep], dim=2)

    def forward(self, x: Optional[Tensor] = None, q: Optional[Tensor] = None,
                k: Optional[Tensor] = None, hw=None) -> Optional[MaskedBias]:
        token_mask = None if self.reconstructing else self.token_mask
        if self.detach_qk:
            q, k = q.detach(), k.detach()
        approx, coef, basis = self.approximate(q, k, token_mask)
        keep = self.connectivity(approx, token_mask)
        last = dict(approx_attn=approx, basis_coef=coef, basis=basis, keep=keep)
        if self.record_dense:
            qq, kk = q, k
            if token_mask is not None:  # the official attention zeroes q/k of pruned tokens
                tokens = torch.cat([token_mask.new_ones(token_mask.shape[0], 1), token_mask], 1)
                qq = q.masked_fill(~tokens[:, None, :, None], 0.)
                kk = k.masked_fill(~tokens[:, None, :, None], 0.)
            last['unmasked_attn'] = ((qq * self.attn_scale) @ kk.transpose(-2, -1)).softmax(-1)
        if self.reconstructing:
            bias = None
        elif token_mask is not None:
            tokens = torch.cat([token_mask.new_ones(token_mask.shape[0], 1), token_mask], 1)
            bias = PrunedMaskedBias(keep, tokens)
        else:
            bias = MaskedBias(keep)
        last['bias'] = bias
        self.last = last
        return bias

    def extra_repr(self) -> str:
        return (f'num_tokens={self.num_tokens}, reduced_n={self.reduced_n}, '
                f'reduced_c={self.reduced_c}, attn_budget={self.attn_budget}, '
                f'coef_topk={self.coef_topk}')


def _sparsity(t: Tensor) -> Tensor:
    """Fraction of exact zeros (official ``compute_sparsity``)."""
    return 1 - torch.count_nonzero(t) / t.numel()


@MODELS.register_module()
class Sparsifiner(VisionTransformer):
    """Sparsifiner ViT (DeiT layout with a connectivity predictor in every attention layer).

    Keys follow mmpretrain's ``VisionTransformer`` (so mmpretrain DeiT checkpoints load directly);
    each predictor sits at ``layers.{i}.attn.bias_provider.{proj_c_q,proj_c_k,proj_n,
    proj_back_n}``. Official checkpoints (timm-DeiT keys) convert with
    ``tools/model_converters/sparsifiner2mmmask.py``.

    Args:
        arch: ``'deit-small'`` (Sparsifiner-S, paper Tab. 1) / ``'deit-base'`` (Sparsifiner-B) /
            ``'deit-tiny'`` or a dict as for mmpretrain's ``VisionTransformer``.
        img_size: fixed input size (the predictors' token-basis projections are ``N × r``).
        attn_keep_rate: kept connections per query, a float or one per layer (0.25).
        reduce_n_factor: ``r = N // reduce_n_factor`` (6 in the official default yaml).
        reduce_c_factor: predictor channel reduction (2).
        share_inout_proj, basis_threshold, coef_topk, coef_threshold, conn_threshold,
        prune_attn_rows: see :class:`SparsifinerConnectivity` (official ``SPAR.*`` options).
        token_keep_rate: per-layer patch-token keep rates (a float for every pruning layer, or one
            per layer); used at the layers of ``token_pruning_loc``.
        token_pruning_loc: layer indices after which tokens are pruned (official
            ``TOKEN_PRUNING_LOC``; ``()`` in the default setting).
        phase: 1 = reconstruction phase (dense attention while training, predictors trainable),
            2 = sparse phase (masks applied, predictors frozen). Change with :meth:`set_phase`.
        **kwargs: the rest of mmpretrain ``VisionTransformer`` (``out_indices``, ``out_type``,
            ``drop_path_rate``, ``frozen_stages``, ``init_cfg`` ...).
    """
    arch_zoo = {
        **dict.fromkeys(['deit-t', 'deit-tiny'], dict(
            embed_dims=192, num_layers=12, num_heads=3, feedforward_channels=192 * 4)),
        **dict.fromkeys(['s', 'small', 'deit-s', 'deit-small', 'sparsifiner-s'], dict(
            embed_dims=384, num_layers=12, num_heads=6, feedforward_channels=384 * 4)),
        **dict.fromkeys(['b', 'base', 'deit-b', 'deit-base', 'sparsifiner-b'], dict(
            embed_dims=768, num_layers=12, num_heads=12, feedforward_channels=768 * 4)),
    }

    def __init__(self, arch: Union[str, dict] = 'deit-small', img_size: int = 224,
                 patch_size: int = 16, attn_keep_rate: Union[float, Sequence[float]] = 0.25,
                 reduce_n_factor: float = 6, reduce_c_factor: int = 2,
                 share_inout_proj: bool = False, basis_threshold: float = 0.02,
                 coef_topk: Optional[int] = 8, coef_threshold: float = 0.05,
                 conn_threshold: Optional[float] = None, prune_attn_rows: bool = False,
                 token_keep_rate: Union[float, Sequence[float]] = 1.0,
                 token_pruning_loc: Sequence[int] = (), phase: int = 2, **kwargs) -> None:
        if isinstance(arch, str) and arch.lower() not in self.arch_zoo:
            raise ValueError(f'Sparsifiner arch {arch!r} is unknown: choose one of '
                             f'{sorted(self.arch_zoo)} or pass a dict with embed_dims, '
                             'num_layers, num_heads, feedforward_channels')
        if not kwargs.get('with_cls_token', True):
            raise ValueError('Sparsifiner needs the CLS token (its query row is kept dense)')
        if kwargs.get('layer_scale_init_value', 0.):
            raise ValueError('Sparsifiner (DeiT) has no layer scale: layer_scale_init_value=0')
        if kwargs.get('pre_norm', False):
            raise ValueError('Sparsifiner (DeiT) has no pre_norm')
        if isinstance(kwargs.get('out_indices'), Sequence):
            kwargs['out_indices'] = list(kwargs['out_indices'])  # mmpretrain edits it in place
        super().__init__(arch=arch, img_size=img_size, patch_size=patch_size, **kwargs)
        depth = self.num_layers
        num_tokens = self.patch_resolution[0] * self.patch_resolution[1] + 1
        self.num_tokens = num_tokens
        keep = self._per_layer(attn_keep_rate, depth, 'attn_keep_rate')
        self.token_keep_rate = self._per_layer(token_keep_rate, depth, 'token_keep_rate')
        self.token_pruning_loc = sorted(int(i) % depth for i in token_pruning_loc)
        self.token_budgets = {i: math.ceil(self.token_keep_rate[i] * (num_tokens - 1))
                              for i in self.token_pruning_loc}
        heads = self.arch_settings['num_heads']

        def provider(index: int, attn) -> SparsifinerConnectivity:
            return SparsifinerConnectivity(
                self.embed_dims, heads, num_tokens, attn_keep_rate=keep[index],
                reduce_n_factor=reduce_n_factor, reduce_c_factor=reduce_c_factor,
                share_inout_proj=share_inout_proj, basis_threshold=basis_threshold,
                coef_topk=coef_topk, coef_threshold=coef_threshold,
                conn_threshold=conn_threshold, prune_attn_rows=prune_attn_rows,
                attn_scale=attn.head_dims**-0.5)

        for layer in self.layers:
            # swap_attention reads ``scale``, which mmpretrain's MultiheadAttention (1.2.0) lacks
            if not hasattr(layer.attn, 'scale'):
                layer.attn.scale = layer.attn.head_dims**-0.5
        swap_attention(self, provider, num_extra_tokens=self.num_extra_tokens)
        self.phase = None
        self.set_phase(phase)

    def train(self, mode: bool = True) -> 'Sparsifiner':
        super().train(mode)  # mmpretrain's BaseBackbone.train returns None
        return self

    @staticmethod
    def _per_layer(value, depth: int, name: str) -> List[float]:
        if isinstance(value, (int, float)):
            return [float(value)] * depth
        value = list(value)
        if len(value) != depth:
            raise ValueError(f'{name} needs one value per layer ({depth}), got {len(value)}')
        return value

    @property
    def predictors(self) -> List[SparsifinerConnectivity]:
        return [layer.attn.bias_provider for layer in self.layers]

    def set_phase(self, phase: int) -> None:
        """1: reconstruction (dense attention in training, predictors trainable); 2: sparse
        attention (predictors frozen: the detached mask gives them no gradient)."""
        if phase not in (1, 2):
            raise ValueError(f'Sparsifiner phase must be 1 (reconstruction) or 2 (sparse), '
                             f'got {phase!r}')
        self.phase = phase
        for p in self.predictors:
            p.recon = phase == 1
            p.requires_grad_(phase == 1)

    def record_dense(self, enabled: bool = True) -> None:
        """Also compute every layer's dense softmax (official ``unmasked_attn``) — analysis."""
        for p in self.predictors:
            p.record_dense = enabled

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        return self.forward_details(x)[0]

    def forward_details(self, x: Tensor, stats: bool = False) -> Tuple[Tuple[Tensor, ...], dict]:
        """``(outputs, details)``. ``details``: ``patch_tokens`` (final normed patch tokens,
        ``(B, N-1, C)`` — for token distillation; None without ``final_norm``), per layer lists
        ``approx_attn``, ``attn`` (the attention map used: dense in phase-1 training, else masked;
        the official ``masked_attn``), ``attn_mask`` (bool), ``basis_coef``, ``token_mask``, and
        ``unmasked_attn`` when :meth:`record_dense` is on. With ``stats``, the official averaged
        ``basis_sparsity``, ``basis_coef_sparsity``, ``attn_mask_sparsity``."""
        b = x.shape[0]
        if x.shape[-2:] != torch.Size(self.img_size):
            raise ValueError(f'Sparsifiner is built for {tuple(self.img_size)} inputs (its '
                             f'predictors are N×r), got {tuple(x.shape[-2:])}: resize the input '
                             'or build the backbone with img_size=...')
        x, hw = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(b, -1, -1), x), dim=1)
        x = self.drop_after_pos(x + self.pos_embed)
        x = self.pre_norm(x)
        keys = ('approx_attn', 'attn', 'attn_mask', 'basis_coef', 'token_mask', 'unmasked_attn')
        details = {k: [] for k in keys}
        sums = torch.zeros(3)
        token_mask = None
        outs = []
        pruning = self.phase == 2  # official: no token pruning while USE_ATTN_RECON
        for i, layer in enumerate(self.layers):
            predictor = layer.attn.bias_provider
            predictor.token_mask = token_mask if pruning else None
            h, attn = layer.attn.attention(layer.ln1(x), hw)
            x = x + h
            x = layer.ffn(layer.ln2(x), identity=x)
            last = predictor.last
            predictor.last, predictor.token_mask = {}, None
            bias = last['bias']
            used = bias.probs if isinstance(bias, PrunedMaskedBias) else attn
            if pruning and i in self.token_budgets:
                score = attn[:, :, 0, 1:].mean(dim=1)
                if token_mask is not None:
                    score = score.masked_fill(~token_mask, float('-inf'))
                index = score.topk(self.token_budgets[i], dim=-1, sorted=False)[1]
                token_mask = torch.zeros_like(score, dtype=torch.bool).scatter_(-1, index, True)
            if token_mask is not None:
                x = torch.cat([x[:, :1], x[:, 1:].masked_fill(~token_mask[..., None], 0.)], 1)
            for key, value in (('approx_attn', last['approx_attn']), ('attn', used),
                               ('attn_mask', last['keep']), ('basis_coef', last['basis_coef']),
                               ('token_mask', token_mask),
                               ('unmasked_attn', last.get('unmasked_attn'))):
                details[key].append(value)
            if stats:
                sums += torch.stack([_sparsity(last['basis']), _sparsity(last['basis_coef']),
                                     _sparsity(last['keep'])]).cpu()
            if i == len(self.layers) - 1 and self.final_norm:
                x = self.ln1(x)
            if i in self.out_indices:
                outs.append(self._format_output(x, hw))
        details['patch_tokens'] = x[:, 1:] if self.final_norm else None
        if stats:
            sums /= len(self.layers)
            details.update(basis_sparsity=sums[0], basis_coef_sparsity=sums[1],
                           attn_mask_sparsity=sums[2])
        return tuple(outs), details


def mhsa_flops(model_or_cfg: Union[nn.Module, dict], input_size: Union[int, Tuple[int, int]] = 224
               ) -> Dict[str, float]:
    """Multiply-accumulates (MACs) of the multi-head self-attention of a Sparsifiner vs the plain
    ViT of the same width/depth, summed over layers (GMac = value / 1e9).

    Per layer, with N tokens (incl. CLS), C channels, H heads of width d, r basis tokens, c reduced
    channels, t kept coefficients and budget k = ceil(keep · N):

    * ``dense_attention``: ``QKᵀ`` + ``AV`` of the plain ViT, ``2·N²·C``;
    * ``sparse_attention``: the same products on the kept connections only,
      ``2·((N-1)·k + N)·C`` (dense CLS row) — what sparse kernels would compute;
    * ``predictor``: ``q~, k~`` ``2·N·H·d·c`` + ``k^`` ``H·c·N·r`` + cheap attention
      ``H·(N-1)·c·r`` + ``A^ = C·B`` as the official code runs it (dense product,
      ``H·(N-1)·r·N``);
    * ``predictor_sparse``: the same with ``A^`` as a sparse product (paper Fig. 2): t kept
      coefficients per row times the non-zeros of the thresholded basis, ``H·(N-1)·t·nnz(B)/r``
      (``nnz(B)`` measured on the model's current ``P_back``); top-k selections are not counted;
    * ``projections``: ``qkv`` + ``proj``, ``4·N·C²`` (unchanged by Sparsifiner);
    * ``dense_mhsa = projections + dense_attention``;
      ``sparse_mhsa = projections + sparse_attention + predictor_sparse``.

    Reductions vs the plain ViT: ``reduction_attention = 1 - (sparse_attention +
    predictor_sparse) / dense_attention`` (attention products + predictor, the scope of the
    paper's "MHSA FLOPs" as far as we can tell), ``reduction_attention_dense_predictor``,
    ``reduction_attention_no_predictor`` (= mask sparsity) and ``reduction_mhsa`` (projections
    included).
    ``model_or_cfg``: a built :class:`Sparsifiner` or its kwargs (``type`` optional).
    """
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    if isinstance(model_or_cfg, dict):
        cfg = dict(model_or_cfg)
        cfg.pop('type', None)
        cfg.setdefault('img_size', input_size)
        model = Sparsifiner(**cfg)
    else:
        model = model_or_cfg
    if tuple(input_size) != tuple(model.img_size):
        raise ValueError(f'model built for {tuple(model.img_size)}, asked for {input_size}')
    n, ch = model.num_tokens, model.embed_dims
    out = dict.fromkeys(('projections', 'dense_attention', 'sparse_attention', 'predictor',
                         'predictor_sparse'), 0)
    for p in model.predictors:
        h, d, c, r = p.num_heads, p.head_dims, p.reduced_c, p.reduced_n
        t = p.coef_topk or r
        with torch.no_grad():
            training, p.training = p.training, False
            basis_nnz = int(torch.count_nonzero(p.basis()))
            p.training = training
        out['projections'] += 4 * n * ch * ch
        out['dense_attention'] += 2 * n * n * ch
        out['sparse_attention'] += 2 * ((n - 1) * p.attn_budget + n) * ch
        low_rank = 2 * n * h * d * c + h * c * n * r + h * (n - 1) * c * r
        out['predictor'] += low_rank + h * (n - 1) * r * n
        out['predictor_sparse'] += low_rank + h * (n - 1) * t * basis_nnz / r
    out['dense_mhsa'] = out['projections'] + out['dense_attention']
    out['sparse_mhsa'] = out['projections'] + out['sparse_attention'] + out['predictor_sparse']
    out['reduction_attention'] = 1 - (out['sparse_attention'] + out['predictor_sparse']) / out[
        'dense_attention']
    out['reduction_attention_dense_predictor'] = 1 - (
        out['sparse_attention'] + out['predictor']) / out['dense_attention']
    out['reduction_attention_no_predictor'] = 1 - out['sparse_attention'] / out[
        'dense_attention']
    out['reduction_mhsa'] = 1 - out['sparse_mhsa'] / out['dense_mhsa']
    return out


# The training side (SparsifinerClassifier and SparsifinerReconLoss in MODELS, SparsifinerPhaseHook
# in HOOKS) lives in mmmask.engine.hooks.sparsifiner_hook; importing it here registers them
# whenever the mmmask models are imported (MODELS looks up ``mmmask.models`` only).
from mmmask.engine.hooks import sparsifiner_hook as _training  # noqa: E402,F401
