"""OPTIN: one-shot, retraining-free structured pruning of transformers under a MAC budget.

Khaki & Plataniotis, "The Need for Speed: Pruning Transformers with One Recipe" (ICLR 2024),
official (language) code: github.com/Skhaki18/optin-transformer-pruning (``prune/*.py``).

Pipeline, reproduced on OpenMMLab models:

1. **Unit discovery** (:func:`discover_blocks`): every transformer block with an attention module
   exposing ``qkv``/``proj``/``num_heads`` (mmpretrain ``MultiheadAttention``, mmpretrain / mmseg /
   mmdet ``WindowMSA`` behind ``ShiftWindowMSA``) and an mmcv ``FFN``. Units: attention heads and
   FFN hidden neurons (optionally groups of ``neuron_group`` neurons).
2. **Soft masks** (:class:`OptinMasker`): forward pre-hooks zero a head's slice of the input of
   ``proj`` (= zeroing its attention probabilities, as the HF ``head_mask`` of the official code)
   and an FFN hidden channel at the input of ``fc2`` (the official code zeroes the pre-activation
   input of GELU; GELU(0) = 0, so the two agree for GELU/ReLU and ours is exact for any activation).
3. **Trajectory importance** (:func:`optin_importance`): for each unit, with only that unit masked,
   ``score = -Σ_{later features} MD(base, masked) - s·KL_T(base logits, masked logits)``
   (``loss_components.manifold_Distillation`` / ``KLDiv``), the KL rescaled by a power of ten so
   that MD/KL ≈ λ (``head_pruning.Prune``), then the official decays (last layer ×0.5, heads ×0.5).
   Scores are ≤ 0; the more negative, the more important.
4. **Selection** (:func:`greedy_select`, ``main_prune.globalRankingLanguage``): units ranked
   globally; for every number of top-ranked heads, fill the remaining MAC budget with top-ranked
   neurons; keep the head count maximising the summed importance.
5. **MACs** per unit (``utils/mac_complexity.py``, generalised to windows and per-block token
   counts) and application: weight zeroing (any architecture, same state-dict shapes) or physical
   slicing (:func:`physically_prune`: FFNs everywhere, heads of mmpretrain ``MultiheadAttention``
   with per-layer head counts; window attention keeps zeroed heads since ``WindowMSA`` derives the
   head width from its input width).
"""
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    'PrunableBlock', 'discover_blocks', 'measure_tokens', 'head_macs', 'neuron_macs',
    'OptinMasker', 'manifold_distillation', 'patch_manifold_distillation', 'optin_kl',
    'KLRescaler', 'optin_importance', 'greedy_select', 'random_select', 'prunable_macs',
    'masks_to_dict', 'masks_from_dict', 'apply_soft_masks', 'physically_prune',
    'load_optin_pruned', 'count_model_macs', 'classifier_logits_fn', 'neuron_groups',
    'optin_prune_model', 'SCORE_KEYS', 'OptinHybridViTNeck'
]

#: keyword arguments of :func:`optin_importance` that a config's ``optin`` dict may set
SCORE_KEYS = ('lambda_', 'temperature', 'md_samples', 'md_variant', 'aggregate', 'include_final',
              'head_final_decay', 'neuron_final_decay', 'head_metric_decay',
              'neuron_metric_decay', 'head_position_decay', 'neuron_position_decay',
              'divide_by_temperature', 'seed')

# --------------------------------------------------------------------------------------------
# Unit discovery and MAC accounting
# --------------------------------------------------------------------------------------------


@dataclass
class PrunableBlock:
    """One transformer block: its attention heads and FFN hidden neurons."""
    name: str
    block: nn.Module
    attn: nn.Module  # the module owning qkv / proj / num_heads
    fc1: nn.Linear
    fc2: nn.Linear
    num_heads: int
    head_dim: int
    window: bool  # window attention (Swin): heads cannot be sliced physically
    norm: Optional[nn.Module] = None  # the block's first norm (ln1 / norm1): a trajectory feature
    # measured by measure_tokens (per image)
    attn_tokens: float = 0.0
    attn_context: int = 0
    ffn_tokens: float = 0.0
    extra: Dict[str, object] = field(default_factory=dict)

    @property
    def hidden(self) -> int:
        return self.fc2.in_features


def _attention_core(attn: nn.Module) -> Optional[nn.Module]:
    for cand in (attn, getattr(attn, 'w_msa', None)):
        if cand is not None and isinstance(getattr(cand, 'qkv', None), nn.Linear) and \
                isinstance(getattr(cand, 'proj', None), nn.Linear) and \
                isinstance(getattr(cand, 'num_heads', None), int):
            return cand
    return None


def _ffn_linears(ffn: nn.Module) -> Optional[Tuple[nn.Linear, nn.Linear]]:
    layers = getattr(ffn, 'layers', None)
    if layers is None or len(layers) < 2:
        return None
    first = layers[0]
    fc1 = first[0] if isinstance(first, nn.Sequential) and len(first) else first
    fc2 = layers[1]
    if isinstance(fc1, nn.Linear) and isinstance(fc2, nn.Linear) and \
            fc1.out_features == fc2.in_features:
        return fc1, fc2
    return None


def discover_blocks(model: nn.Module) -> List[PrunableBlock]:
    """All prunable transformer blocks of ``model`` in forward order.

    A block is a module with an ``attn`` (mmpretrain ``MultiheadAttention``, or a
    ``ShiftWindowMSA`` whose ``w_msa`` is a ``WindowMSA``) and an mmcv ``FFN`` (``ffn``, two
    linears). Covers mmpretrain ``VisionTransformer``/``SwinTransformer`` and the mmseg/mmdet
    ``SwinTransformer`` backbones of Mask2Former.
    """
    blocks = []
    for name, m in model.named_modules():
        attn, ffn = getattr(m, 'attn', None), getattr(m, 'ffn', None)
        if not isinstance(attn, nn.Module) or not isinstance(ffn, nn.Module):
            continue
        core, fcs = _attention_core(attn), _ffn_linears(ffn)
        if core is None or fcs is None:
            continue
        if core.proj.in_features % core.num_heads:
            continue
        norm = getattr(m, 'ln1', None)
        if not isinstance(norm, nn.Module):
            norm = getattr(m, 'norm1', None)
        blocks.append(
            PrunableBlock(name=name, block=m, attn=core, fc1=fcs[0], fc2=fcs[1],
                          num_heads=core.num_heads,
                          head_dim=core.proj.in_features // core.num_heads,
                          window=hasattr(core, 'window_size'),
                          norm=norm if isinstance(norm, nn.Module) else None))
    if not blocks:
        raise ValueError(
            f'OPTIN found no prunable transformer block in {type(model).__name__}: it needs blocks '
            'with an `attn` owning qkv/proj/num_heads (mmpretrain VisionTransformer/'
            'SwinTransformer, mmseg/mmdet SwinTransformer) and an mmcv FFN `ffn`. Use one of '
            'these backbones (e.g. type="mmpretrain.VisionTransformer").')
    return blocks


@torch.no_grad()
def measure_tokens(blocks: Sequence[PrunableBlock], forward: Callable[[], object],
                   batch_size: int) -> None:
    """Record, per image, the tokens entering each block's qkv and FFN and the attention
    context length (all tokens for global attention, the window for Swin), by one forward."""
    handles = []

    def on_qkv(b: PrunableBlock):
        def hook(_, args):
            x = args[0]
            b.attn_tokens = x.numel() / x.shape[-1] / batch_size
            b.attn_context = int(x.shape[-2])
        return hook

    def on_fc1(b: PrunableBlock):
        def hook(_, args):
            x = args[0]
            b.ffn_tokens = x.numel() / x.shape[-1] / batch_size
        return hook

    for b in blocks:
        handles.append(b.attn.qkv.register_forward_pre_hook(on_qkv(b)))
        handles.append(b.fc1.register_forward_pre_hook(on_fc1(b)))
    try:
        forward()
    finally:
        for h in handles:
            h.remove()
    missing = [b.name for b in blocks if not b.attn_tokens or not b.ffn_tokens]
    if missing:
        raise RuntimeError(f'blocks {missing} were not run by the forward pass')


def head_macs(b: PrunableBlock) -> float:
    """MACs per image of one head: q/k/v projections, QKᵀ and AV, output projection
    (``mac_complexity.mac_per_head`` with per-block tokens T and context N)."""
    t, d = b.attn_tokens, b.head_dim
    return t * b.attn.qkv.in_features * 3 * d + 2 * t * b.attn_context * d + \
        t * d * b.attn.proj.out_features


def neuron_macs(b: PrunableBlock) -> float:
    """MACs per image of one FFN hidden neuron (``mac_per_neuron`` = 2·T·C)."""
    return b.ffn_tokens * (b.fc1.in_features + b.fc2.out_features)


def neuron_groups(hidden: int, group: int) -> List[Tuple[int, int]]:
    """Contiguous neuron groups ``[start, end)`` (group = 1: one unit per neuron)."""
    return [(s, min(s + group, hidden)) for s in range(0, hidden, group)]


def prunable_macs(blocks: Sequence[PrunableBlock], head_keep: Optional[Sequence[Tensor]] = None,
                  neuron_keep: Optional[Sequence[Tensor]] = None) -> float:
    """MACs per image of the kept heads and neurons (all of them when masks are None)."""
    if any(not b.attn_tokens or not b.ffn_tokens for b in blocks):
        raise ValueError('unit MACs unknown: run measure_tokens(blocks, forward, batch_size) '
                         'on these blocks first')
    total = 0.0
    for i, b in enumerate(blocks):
        nh = b.num_heads if head_keep is None else float(head_keep[i].sum())
        nn_ = b.hidden if neuron_keep is None else float(neuron_keep[i].sum())
        total += nh * head_macs(b) + nn_ * neuron_macs(b)
    return total


# --------------------------------------------------------------------------------------------
# Soft masks
# --------------------------------------------------------------------------------------------


class OptinMasker:
    """Forward pre-hooks multiplying the input of each block's ``proj`` by a per-head mask
    (repeated over the head width) and the input of ``fc2`` by a per-neuron mask."""

    def __init__(self, blocks: Sequence[PrunableBlock]):
        self.blocks = list(blocks)
        dev = [b.fc2.weight.device for b in self.blocks]
        self.head_masks = [torch.ones(b.num_heads, device=d) for b, d in zip(self.blocks, dev)]
        self.neuron_masks = [torch.ones(b.hidden, device=d) for b, d in zip(self.blocks, dev)]
        self._handles = []

    def _head_hook(self, i: int):
        b = self.blocks[i]

        def hook(_, args):
            m = self.head_masks[i]
            if bool((m == 1).all()):
                return None
            x = args[0]
            return (x * m.to(x.dtype).repeat_interleave(b.head_dim), ) + tuple(args[1:])
        return hook

    def _neuron_hook(self, i: int):
        def hook(_, args):
            m = self.neuron_masks[i]
            if bool((m == 1).all()):
                return None
            x = args[0]
            return (x * m.to(x.dtype), ) + tuple(args[1:])
        return hook

    def attach(self) -> 'OptinMasker':
        if not self._handles:
            for i, b in enumerate(self.blocks):
                self._handles.append(b.attn.proj.register_forward_pre_hook(self._head_hook(i)))
                self._handles.append(b.fc2.register_forward_pre_hook(self._neuron_hook(i)))
        return self

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def reset(self) -> None:
        for m in self.head_masks + self.neuron_masks:
            m.fill_(1)

    def set(self, head_keep: Optional[Sequence[Tensor]] = None,
            neuron_keep: Optional[Sequence[Tensor]] = None) -> None:
        for i in range(len(self.blocks)):
            if head_keep is not None:
                self.head_masks[i].copy_(head_keep[i].float())
            if neuron_keep is not None:
                self.neuron_masks[i].copy_(neuron_keep[i].float())

    def __enter__(self) -> 'OptinMasker':
        return self.attach()

    def __exit__(self, *exc) -> None:
        self.detach()


# --------------------------------------------------------------------------------------------
# Importance (loss_components.py + head_pruning.Prune)
# --------------------------------------------------------------------------------------------


def manifold_distillation(teacher: Tensor, student: Tensor, num_samples: int = 768,
                          generator: Optional[torch.Generator] = None,
                          aggregate: str = 'sum') -> Tensor:
    """Manifold-distillation distortion (``manifold_Distillation``, returned positive): tokens
    L2-normalised, ``num_samples`` token rows drawn (seeded ``randperm``) from the flattened
    batch, ``‖f_t f_tᵀ − f_s f_sᵀ‖²`` summed (or averaged with ``aggregate='mean'``)."""
    f_t = F.normalize(teacher.float(), dim=-1).reshape(-1, teacher.shape[-1])
    f_s = F.normalize(student.float(), dim=-1).reshape(-1, student.shape[-1])
    pick = torch.randperm(f_t.shape[0], generator=generator)[:num_samples].to(f_t.device)
    f_t, f_s = f_t[pick], f_s[pick]
    diff = f_t @ f_t.T - f_s @ f_s.T
    sq = diff * diff
    if aggregate == 'sum':
        return sq.sum()
    if aggregate == 'mean':
        return sq.mean()
    raise ValueError(f"aggregate must be 'sum' or 'mean', got {aggregate!r}")


def patch_manifold_distillation(teacher: Tensor, student: Tensor) -> Tensor:
    """The vision-only patch-based variant (``patch_based_manifold_Distillation``): per token
    position, the inter-sample Gram matrix; the batch-mean difference, squared and summed."""
    f_t = F.normalize(teacher.float(), dim=-1).permute(1, 0, 2)
    f_s = F.normalize(student.float(), dim=-1).permute(1, 0, 2)
    diff = (f_t @ f_t.transpose(-1, -2)).mean(0) - (f_s @ f_s.transpose(-1, -2)).mean(0)
    return (diff * diff).sum()


def optin_kl(teacher_logits: Tensor, student_logits: Tensor, temperature: float = 4.0,
             divide_by_temperature: bool = False) -> Tensor:
    """``KLDiv``: KL(teacher ‖ student) over dim 1, summed over the batch, times T², clamped at
    0 (returned positive). The official code multiplies by T² without dividing the logits by T;
    ``divide_by_temperature=True`` gives the textbook distillation KL instead."""
    t, s = teacher_logits.float(), student_logits.float()
    if divide_by_temperature:
        t, s = t / temperature, s / temperature
    kl = F.kl_div(F.log_softmax(s, dim=1), F.log_softmax(t, dim=1), reduction='sum',
                  log_target=True) * temperature * temperature
    return kl.clamp(min=0)


class KLRescaler:
    """The official balancing of the (negated) KL against the (negated) MD: when |MD| > |KL|,
    multiply the KL by ``10**int(log10|MD| − log10|KL| − log10 λ)`` and remember the factor;
    otherwise (or when the ratio is undefined, e.g. KL = 0) use the mean factor so far (1 if
    none). One rescaler per scoring pass (heads, then neurons), as in the official loops."""

    def __init__(self, lambda_: float = 10.0):
        self.lambda_ = lambda_
        self.history: List[float] = []

    def _mean(self) -> float:
        return float(np.mean(self.history)) if self.history else 1.0

    def __call__(self, md: float, kl: float) -> float:
        if md < kl:
            try:
                ratio = math.log10(-md) - math.log10(-kl)
                scaling = 10**int(ratio - math.log10(self.lambda_))
            except (ValueError, OverflowError):
                return kl * self._mean()
            self.history.append(scaling)
            return kl * scaling
        return kl * self._mean()


def classifier_logits_fn(model: nn.Module, inputs: Tensor,
                         data_samples: Optional[list] = None) -> Callable[[], Tensor]:
    """A no-argument forward returning the logits OPTIN compares: ``mode='tensor'`` of an
    mmpretrain classifier, ``encode_decode`` (per-pixel class scores, class dim 1) of an mmseg
    segmentor."""
    if hasattr(model, 'encode_decode') and hasattr(model, 'decode_head'):
        metas = [s.metainfo for s in data_samples] if data_samples else \
            [dict(img_shape=inputs.shape[-2:], ori_shape=inputs.shape[-2:],
                  pad_shape=inputs.shape[-2:])] * inputs.shape[0]
        return lambda: model.encode_decode(inputs, metas)

    def run():
        out = model(inputs, mode='tensor')
        if isinstance(out, (tuple, list)):
            out = out[-1]
        if not isinstance(out, Tensor) or out.dim() < 2:
            raise TypeError('OPTIN needs logits (B, K, ...) from model(inputs, mode="tensor"); '
                            f'{type(model).__name__} gave {type(out).__name__}: pass a logits_fn')
        return out
    return run


def _feature_hooks(blocks: Sequence[PrunableBlock], store: List[Optional[Tensor]]):
    """Trajectory features: F_j (j = 1..L−1) is the first norm's output of block j (its input
    when it has none), the official vision ``layernorm_before``; F_L the last block's output."""
    handles = []
    n = len(blocks)

    def put(j):
        def hook(_, args, out=None):
            t = out if out is not None else args[0]
            store[j] = t[0] if isinstance(t, (tuple, list)) else t
        return hook

    for j in range(1, n):
        b = blocks[j]
        if b.norm is not None:
            handles.append(b.norm.register_forward_hook(put(j)))
        else:
            handles.append(b.block.register_forward_pre_hook(put(j)))
    handles.append(blocks[-1].block.register_forward_hook(put(n)))
    return handles


def _position_weights(n: int, stop: Optional[float]) -> np.ndarray:
    if not stop:
        return np.ones(n)
    return np.geomspace(1, stop, num=n)[::-1]


@torch.no_grad()
def optin_importance(blocks: Sequence[PrunableBlock], logits_fn: Callable[[], Tensor],
                     lambda_: float = 10.0, temperature: float = 4.0, md_samples: int = 768,
                     md_variant: str = 'token', aggregate: str = 'sum',
                     include_final: bool = True, head_final_decay: float = 0.5,
                     neuron_final_decay: float = 0.5, head_metric_decay: float = 0.5,
                     neuron_metric_decay: float = 1.0,
                     head_position_decay: Optional[float] = None,
                     neuron_position_decay: Optional[float] = None, neuron_group: int = 1,
                     divide_by_temperature: bool = False, seed: int = 0,
                     progress: Optional[Callable[[str, int, int], None]] = None
                     ) -> Dict[str, List[Tensor]]:
    """OPTIN scores (≤ 0, more negative = more important) of every head and neuron group.

    One forward per unit with only that unit masked (``head_pruning.Prune`` /
    ``language_pruning.Prune``): Σ of MD over the trajectory features after the unit's block
    (F_{l+1}..F_L; for the last block F_L only if ``include_final``) plus the rescaled λ-KL.
    Decays as in ``configs/language/mnli_bert.yaml``: last-layer units ×0.5, heads ×0.5;
    ``*_position_decay`` (10 for heads and 100 for neurons in the language code) weights units
    by a reversed geometric ramp over their index and is off by default for vision.
    Returns ``dict(head=[(num_heads,)...], neuron=[(num_groups,)...])`` per block.
    """
    if md_variant not in ('token', 'patch'):
        raise ValueError(f"md_variant must be 'token' or 'patch', got {md_variant!r}")
    n = len(blocks)
    feats: List[Optional[Tensor]] = [None] * (n + 1)
    handles = _feature_hooks(blocks, feats)
    masker = OptinMasker(blocks).attach()
    try:
        base_logits = logits_fn()
        base_feats = list(feats)

        def score(layer: int, rescaler: KLRescaler, gen: torch.Generator) -> Tuple[float, float]:
            cur_logits = logits_fn()
            md = 0.0
            for j in range(layer + 1, n + 1):
                if j == n and layer == n - 1 and not include_final:
                    continue
                if md_variant == 'token':
                    md -= float(manifold_distillation(base_feats[j], feats[j], md_samples, gen,
                                                      aggregate))
                else:
                    md -= float(patch_manifold_distillation(base_feats[j], feats[j]))
            kl = -float(optin_kl(base_logits, cur_logits, temperature, divide_by_temperature))
            return md, rescaler(md, kl)

        out: Dict[str, List[Tensor]] = dict(head=[], neuron=[])
        # heads (head_pruning.Prune)
        gen = torch.Generator().manual_seed(seed)
        rescaler = KLRescaler(lambda_)
        total = sum(b.num_heads for b in blocks)
        done = 0
        for i, b in enumerate(blocks):
            pos = _position_weights(b.num_heads, head_position_decay)
            scores = torch.zeros(b.num_heads, dtype=torch.float64)
            for h in range(b.num_heads):
                masker.head_masks[i][h] = 0
                md, kl = score(i, rescaler, gen)
                masker.head_masks[i][h] = 1
                s = md + kl
                if i == n - 1:
                    s *= head_final_decay
                s *= pos[h] * head_metric_decay
                scores[h] = s
                done += 1
                if progress:
                    progress('head', done, total)
            out['head'].append(scores)
        # neurons (language_pruning.Prune)
        gen = torch.Generator().manual_seed(seed)
        rescaler = KLRescaler(lambda_)
        total = sum(len(neuron_groups(b.hidden, neuron_group)) for b in blocks)
        done = 0
        for i, b in enumerate(blocks):
            groups = neuron_groups(b.hidden, neuron_group)
            pos = _position_weights(len(groups), neuron_position_decay)
            scores = torch.zeros(len(groups), dtype=torch.float64)
            for g, (s0, s1) in enumerate(groups):
                masker.neuron_masks[i][s0:s1] = 0
                md, kl = score(i, rescaler, gen)
                masker.neuron_masks[i][s0:s1] = 1
                s = (md + kl) * pos[g] * neuron_metric_decay
                if i == n - 1:
                    s *= neuron_final_decay
                scores[g] = s
                done += 1
                if progress:
                    progress('neuron', done, total)
            out['neuron'].append(scores)
    finally:
        masker.detach()
        for h in handles:
            h.remove()
    return out


# --------------------------------------------------------------------------------------------
# Selection under a MAC budget (main_prune.globalRankingLanguage)
# --------------------------------------------------------------------------------------------


def _expand_groups(blocks, keep_groups: List[Tensor], neuron_group: int) -> List[Tensor]:
    out = []
    for b, kg in zip(blocks, keep_groups):
        m = torch.zeros(b.hidden, dtype=torch.bool)
        for g, (s0, s1) in enumerate(neuron_groups(b.hidden, neuron_group)):
            m[s0:s1] = bool(kg[g])
        out.append(m)
    return out


def greedy_select(blocks: Sequence[PrunableBlock], scores: Dict[str, List[Tensor]],
                  budget: float, neuron_group: int = 1
                  ) -> Tuple[List[Tensor], List[Tensor], Dict[str, float]]:
    """Keep masks (bool per head / per neuron) under ``budget`` × the prunable MACs.

    Heads and neuron groups are ranked by score (ascending, ties by block then index, as the
    official PriorityQueue of ``(score, layer, index)``). For k = 1..#heads: the top-k heads, then
    the longest prefix of ranked neurons that fits the remaining MACs; the k with the largest
    Σ(−score) wins (first maximum). Deviation: head counts whose MACs alone exceed the budget are
    skipped (the official loop still scores them, so could return an over-budget model).
    """
    if not 0 < budget <= 1:
        raise ValueError(f'budget must be a fraction of the MACs in (0, 1], got {budget}')
    hs = [(float(scores['head'][i][h]), i, h) for i, b in enumerate(blocks)
          for h in range(b.num_heads)]
    ns = [(float(scores['neuron'][i][g]), i, g) for i, b in enumerate(blocks)
          for g in range(len(neuron_groups(b.hidden, neuron_group)))]
    hs.sort()
    ns.sort()
    h_mac = np.array([head_macs(blocks[i]) for _, i, _ in hs])
    gsize = {i: [e - s for s, e in neuron_groups(b.hidden, neuron_group)]
             for i, b in enumerate(blocks)}
    n_mac = np.array([neuron_macs(blocks[i]) * gsize[i][g] for _, i, g in ns])
    base = prunable_macs(blocks)
    cap = budget * base
    h_cmac = np.concatenate([[0.], np.cumsum(h_mac)])
    h_cimp = np.concatenate([[0.], np.cumsum([-s for s, _, _ in hs])])
    n_cmac = np.concatenate([[0.], np.cumsum(n_mac)])
    n_cimp = np.concatenate([[0.], np.cumsum([-s for s, _, _ in ns])])
    best, best_k, best_m = -np.inf, 0, 0
    tol = 1e-9 * max(base, 1.0)
    for k in range(1, len(hs) + 1):
        rem = cap - h_cmac[k]
        if rem < -tol:
            break  # head MACs are cumulative: larger k cannot fit either
        m = int(np.searchsorted(n_cmac, rem + tol, side='right')) - 1
        imp = h_cimp[k] + n_cimp[m]
        if imp > best:
            best, best_k, best_m = imp, k, m
    if best_k == 0:  # not even one head fits: neurons only
        best_m = int(np.searchsorted(n_cmac, cap + tol, side='right')) - 1
    head_keep = [torch.zeros(b.num_heads, dtype=torch.bool) for b in blocks]
    for _, i, h in hs[:best_k]:
        head_keep[i][h] = True
    keep_groups = [torch.zeros(len(gsize[i]), dtype=torch.bool) for i in range(len(blocks))]
    for _, i, g in ns[:best_m]:
        keep_groups[i][g] = True
    neuron_keep = _expand_groups(blocks, keep_groups, neuron_group)
    kept = prunable_macs(blocks, head_keep, neuron_keep)
    return head_keep, neuron_keep, dict(base_macs=base, kept_macs=kept, ratio=kept / base,
                                        num_heads=best_k, num_neuron_units=best_m)


def random_select(blocks: Sequence[PrunableBlock], budget: float, seed: int = 0,
                  neuron_group: int = 1) -> Tuple[List[Tensor], List[Tensor], Dict[str, float]]:
    """Baseline: heads and neuron groups in one random order, each kept if it still fits."""
    units = [('h', i, h, head_macs(b)) for i, b in enumerate(blocks) for h in range(b.num_heads)]
    for i, b in enumerate(blocks):
        for g, (s0, s1) in enumerate(neuron_groups(b.hidden, neuron_group)):
            units.append(('n', i, g, neuron_macs(b) * (s1 - s0)))
    order = torch.randperm(len(units), generator=torch.Generator().manual_seed(seed)).tolist()
    base = prunable_macs(blocks)
    rem = budget * base
    head_keep = [torch.zeros(b.num_heads, dtype=torch.bool) for b in blocks]
    keep_groups = [torch.zeros(len(neuron_groups(b.hidden, neuron_group)), dtype=torch.bool)
                   for b in blocks]
    for u in order:
        kind, i, j, mac = units[u]
        if mac <= rem:
            rem -= mac
            (head_keep if kind == 'h' else keep_groups)[i][j] = True
    neuron_keep = _expand_groups(blocks, keep_groups, neuron_group)
    kept = prunable_macs(blocks, head_keep, neuron_keep)
    return head_keep, neuron_keep, dict(base_macs=base, kept_macs=kept, ratio=kept / base)


# --------------------------------------------------------------------------------------------
# Masks <-> JSON, application
# --------------------------------------------------------------------------------------------


def masks_to_dict(blocks: Sequence[PrunableBlock], head_keep: Sequence[Tensor],
                  neuron_keep: Sequence[Tensor]) -> Dict[str, object]:
    """JSON-able description: per block its name, kept head and neuron indices."""
    return dict(blocks=[
        dict(name=b.name, num_heads=b.num_heads, hidden=b.hidden,
             head_keep=torch.nonzero(head_keep[i]).flatten().tolist(),
             neuron_keep=torch.nonzero(neuron_keep[i]).flatten().tolist())
        for i, b in enumerate(blocks)
    ])


def masks_from_dict(blocks: Sequence[PrunableBlock],
                    masks: Dict[str, object]) -> Tuple[List[Tensor], List[Tensor]]:
    """Keep masks back from :func:`masks_to_dict` output (checked against ``blocks``)."""
    entries = {e['name']: e for e in masks['blocks']}
    head_keep, neuron_keep = [], []
    for b in blocks:
        if b.name not in entries:
            raise KeyError(f'mask file has no entry for block {b.name!r}: it was made for '
                           'another architecture')
        e = entries[b.name]
        if e['num_heads'] != b.num_heads or e['hidden'] != b.hidden:
            raise ValueError(f'block {b.name}: mask for {e["num_heads"]} heads/{e["hidden"]} '
                             f'neurons, model has {b.num_heads}/{b.hidden}')
        h = torch.zeros(b.num_heads, dtype=torch.bool)
        h[list(e['head_keep'])] = True
        m = torch.zeros(b.hidden, dtype=torch.bool)
        m[list(e['neuron_keep'])] = True
        head_keep.append(h)
        neuron_keep.append(m)
    return head_keep, neuron_keep


@torch.no_grad()
def apply_soft_masks(blocks: Sequence[PrunableBlock], head_keep: Sequence[Tensor],
                     neuron_keep: Sequence[Tensor]) -> None:
    """Bake the masks into the weights: zero the ``proj`` input columns of dropped heads and the
    ``fc2`` input columns of dropped neurons (exactly the hooked mask; state-dict shapes and
    the config are unchanged, so the checkpoint loads into the original model)."""
    for i, b in enumerate(blocks):
        cols = (~head_keep[i].bool()).repeat_interleave(b.head_dim).to(b.attn.proj.weight.device)
        b.attn.proj.weight[:, cols] = 0
        b.fc2.weight[:, (~neuron_keep[i].bool()).to(b.fc2.weight.device)] = 0


def _slice_linear(lin: nn.Linear, out_idx: Optional[Tensor] = None,
                  in_idx: Optional[Tensor] = None) -> nn.Linear:
    w = lin.weight.data
    if out_idx is not None:
        w = w[out_idx]
    if in_idx is not None:
        w = w[:, in_idx]
    with warnings.catch_warnings():  # zero kept units: init of an empty weight warns
        warnings.simplefilter('ignore')
        new = nn.Linear(w.shape[1], w.shape[0], bias=lin.bias is not None, device='meta')
    new = new.to_empty(device=w.device).to(w.dtype)
    new.weight.data.copy_(w)
    if lin.bias is not None:
        b = lin.bias.data if out_idx is None else lin.bias.data[out_idx]
        new.bias.data.copy_(b)
    return new


def _replace_child(root: nn.Module, child: nn.Module, new: nn.Module) -> None:
    for m in root.modules():
        for name, c in m.named_children():
            if c is child:
                setattr(m, name, new)
                return
    raise RuntimeError('module to replace not found')


@torch.no_grad()
def physically_prune(blocks: Sequence[PrunableBlock], head_keep: Sequence[Tensor],
                     neuron_keep: Sequence[Tensor]) -> Dict[str, List[str]]:
    """Slice the pruned units out of the model (in place).

    FFNs: ``fc1`` rows and ``fc2`` columns of every block. Heads: ``qkv`` rows and ``proj``
    columns of mmpretrain ``MultiheadAttention`` (its ``num_heads``/``embed_dims`` become the
    per-layer kept counts; zero heads leave ``proj``'s bias). Window attention (Swin ``WindowMSA``
    reshapes qkv with ``C // num_heads`` taken from its input) keeps all heads with the dropped
    ones zeroed, reported under ``soft_heads``. Returns ``dict(sliced_heads, soft_heads)``.
    """
    report: Dict[str, List[str]] = dict(sliced_heads=[], soft_heads=[])
    for i, b in enumerate(blocks):
        keep_n = torch.nonzero(neuron_keep[i]).flatten().to(b.fc1.weight.device)
        new1, new2 = _slice_linear(b.fc1, out_idx=keep_n), _slice_linear(b.fc2, in_idx=keep_n)
        _replace_child(b.block, b.fc1, new1)
        _replace_child(b.block, b.fc2, new2)
        b.fc1, b.fc2 = new1, new2
        a = b.attn
        sliceable = (not b.window and hasattr(a, 'embed_dims') and hasattr(a, 'head_dims')
                     and not getattr(a, 'v_shortcut', False)
                     and a.qkv.out_features == 3 * a.num_heads * a.head_dims)
        if not sliceable:
            cols = (~head_keep[i].bool()).repeat_interleave(b.head_dim).to(a.proj.weight.device)
            a.proj.weight[:, cols] = 0
            report['soft_heads'].append(b.name)
            continue
        keep_h = torch.nonzero(head_keep[i]).flatten().tolist()
        d, e = a.head_dims, a.num_heads * a.head_dims
        inner = [h * d + j for h in keep_h for j in range(d)]
        rows = torch.tensor([s * e + c for s in range(3) for c in inner], dtype=torch.long)
        a.qkv = _slice_linear(a.qkv, out_idx=rows.to(a.qkv.weight.device))
        a.proj = _slice_linear(a.proj, in_idx=torch.tensor(inner, dtype=torch.long).to(
            a.proj.weight.device))
        a.num_heads, a.embed_dims = len(keep_h), len(keep_h) * d
        b.num_heads = len(keep_h)
        report['sliced_heads'].append(b.name)
    return report


def load_optin_pruned(model: nn.Module, checkpoint: str, map_location: str = 'cpu') -> Dict:
    """Load a physically pruned checkpoint written by ``tools/analysis_tools/optin_prune.py``
    into a freshly built model of the original config: the masks stored in its
    ``meta['optin']`` reshape the model first. Returns the checkpoint's meta."""
    ckpt = torch.load(checkpoint, map_location=map_location, weights_only=False)
    meta = ckpt.get('meta', {})
    if 'optin' not in meta:
        raise KeyError(f'{checkpoint} has no meta["optin"] masks: it is not an OPTIN pruned '
                       'checkpoint (an optin_masked.pth loads with the plain config instead)')
    blocks = discover_blocks(model)
    head_keep, neuron_keep = masks_from_dict(blocks, meta['optin'])
    physically_prune(blocks, head_keep, neuron_keep)
    model.load_state_dict(ckpt['state_dict'], strict=True)
    return meta


def count_model_macs(model: nn.Module, inputs: Tensor,
                     forward: Optional[Callable[[nn.Module, Tensor], object]] = None) -> float:
    """Whole-model MACs per image (mmengine ``FlopAnalyzer``, fvcore-style: one MAC = one
    "flop"), with mmpretrain ``MultiheadAttention`` temporarily on its matmul attention so the
    attention products are counted (mmengine has no handle for fused SDPA)."""
    from mmengine.analysis import FlopAnalyzer
    try:
        from mmpretrain.models.utils.attention import (MultiheadAttention,
                                                       scaled_dot_product_attention_pyimpl)
    except ImportError:  # pragma: no cover
        MultiheadAttention, scaled_dot_product_attention_pyimpl = None, None

    class _Wrap(nn.Module):

        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            if forward is not None:
                return forward(self.m, x)
            return self.m(x, mode='tensor')

    saved = []
    if MultiheadAttention is not None:
        for m in model.modules():
            if isinstance(m, MultiheadAttention):
                saved.append((m, m.scaled_dot_product_attention))
                m.scaled_dot_product_attention = scaled_dot_product_attention_pyimpl
    was_training = model.training
    model.eval()
    try:
        analyzer = FlopAnalyzer(_Wrap(model), (inputs, ))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        total = analyzer.total()
    finally:
        for m, f in saved:
            m.scaled_dot_product_attention = f
        model.train(was_training)
    return total / inputs.shape[0]


def optin_prune_model(model: nn.Module, inputs: Tensor, budget: float = 0.6,
                      data_samples: Optional[list] = None,
                      logits_fn: Optional[Callable[[], Tensor]] = None, neuron_group: int = 1,
                      progress: Optional[Callable[[str, int, int], None]] = None,
                      **score_kwargs) -> Dict[str, object]:
    """The whole OPTIN recipe on one calibration batch of preprocessed ``inputs``: discover the
    units, measure their MACs, score them, select under ``budget`` (fraction of the prunable
    MACs). The model is not modified. Returns ``dict(blocks, scores, head_keep, neuron_keep,
    info, masks)``."""
    unknown = set(score_kwargs) - set(SCORE_KEYS)
    if unknown:
        raise TypeError(f'unknown OPTIN settings {sorted(unknown)}; known: {SCORE_KEYS}')
    was_training = model.training
    model.eval()
    try:
        blocks = discover_blocks(model)
        fwd = logits_fn or classifier_logits_fn(model, inputs, data_samples)
        with torch.no_grad():
            measure_tokens(blocks, fwd, inputs.shape[0])
        scores = optin_importance(blocks, fwd, neuron_group=neuron_group, progress=progress,
                                  **score_kwargs)
        head_keep, neuron_keep, info = greedy_select(blocks, scores, budget, neuron_group)
    finally:
        model.train(was_training)
    masks = masks_to_dict(blocks, head_keep, neuron_keep)
    masks.update(budget=budget, **{k: v for k, v in info.items()})
    return dict(blocks=blocks, scores=scores, head_keep=head_keep, neuron_keep=neuron_keep,
                info=info, masks=masks)


from .optin_toy import OptinHybridViTNeck  # noqa: E402  (registers mmmask.OptinHybridViTNeck)
