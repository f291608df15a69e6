"""A ViT seen as an ensemble of paths (Chang et al., "Revisiting Vision Transformer from the View of
Path Ensemble", ICCV 2023, arXiv:2308.06548). No official code exists; see
``configs/path_ensemble/README.md`` for every assumption.

One pre-norm layer ``x̂ = x_l + MSA(x_l)``, ``x_{l+1} = x̂ + FFN(x̂)`` equals three parallel paths,
``x_{l+1} = x_l + MSA(x_l) + FFN(x_l + MSA(x_l))``; unrolled over ``L`` layers, the classifier
input ``x_L = x_0 + Σ_l [MSA_l + FFN_l]`` is an ensemble of ``2L + 1`` path outputs of different
lengths (term 0 the embedding, term ``2l+1`` layer ``l``'s MSA output, term ``2l+2`` its FFN
output).

:class:`PathEnsembleViT` keeps mmpretrain's ``VisionTransformer`` modules and keys (ViT/DeiT
checkpoints load unchanged) and adds, next to the residual stream, an *ensemble accumulator*
``e = Σ_p m_p·γ_p·t_p`` that feeds the final norm and the outputs:

* **path pruning** — ``m_p ∈ {0, 1}`` drops a term from the final sum only; the residual stream is
  untouched, so a pruned path still feeds every later (longer) path (paths after the last kept
  term feed nothing and are not computed: pruning the tail is the only pruning that saves compute);
* **EnsembleScale** — a learnable ``γ_p`` per term (init 1) re-weights the sum;
* **self-distillation** long → short paths (:class:`PathEnsembleClassifier`): the partial ensembles
  after chosen layers (what a truncated ViT would classify: all paths of length ≤ l) go through the
  final norm and the shared head, and are pulled towards the full model's prediction by a
  temperature-scaled KL divergence (teacher detached).

With every ``γ = 1`` and nothing pruned the accumulator *is* the residual stream (the same
additions in the same order), so the model is the ViT it was loaded from.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmpretrain.models.backbones import VisionTransformer
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.models.utils import resize_pos_embed
from torch import Tensor, nn

from ...registry import MODELS
from ..layers.biased_attention import BiasedSelfAttention
from .hyena_nd import HyenaND

__all__ = ['PathEnsembleViT', 'PathEnsembleClassifier', 'path_names', 'path_self_distillation']

PathSpec = Union[int, str]


def path_names(num_layers: int) -> List[str]:
    """Names of the ``2L + 1`` ensemble terms: ``'embed'``, ``'attn.0'``, ``'ffn.0'``, ..."""
    names = ['embed']
    for i in range(num_layers):
        names += [f'attn.{i}', f'ffn.{i}']
    return names


@MODELS.register_module()
class PathEnsembleViT(VisionTransformer):
    """mmpretrain's ViT with an explicit path-ensemble accumulator, path pruning and EnsembleScale.

    Args:
        prune_paths: terms dropped from the final sum — indices (0 = embedding, ``2l+1`` = MSA of
            layer ``l``, ``2l+2`` = FFN of layer ``l``) or names (``'embed'``, ``'attn.3'``,
            ``'ffn.11'``).
        ensemble_scale: learn ``γ`` (``'scalar'``: one per term, ``'channel'``: one per term and
            channel); ``None`` fixes ``γ = 1``.
        scale_init: initial ``γ``.
        bias_provider: optional attention-bias provider config (e.g. ``dict(type=
            'mmmask.GaussianMixtureMask', num_heads=4)``): every attention becomes a
            :class:`BiasedSelfAttention` with its own provider (same ``qkv``/``proj`` keys). The
            path-ensemble view holds for any pre-norm residual ViT.
        hyena_cfg: optional :class:`~mmmask.models.backbones.hyena_nd.HyenaND` kwargs: every
            attention is replaced by a Hyena N-D mixer (a Hyena-ViT as a path ensemble; needs
            ``with_cls_token=False``).
        **kwargs: mmpretrain ``VisionTransformer`` arguments (``arch``, ``img_size``,
            ``out_type``, ``out_indices``, ``drop_path_rate``, ...). ``out_indices`` select
            *partial ensembles*: the output after layer ``i`` is the accumulator at that depth
            (final-normed for the last layer, raw otherwise, like mmpretrain's ViT).
    """

    def __init__(self, *args, prune_paths: Sequence[PathSpec] = (),
                 ensemble_scale: Optional[str] = 'scalar', scale_init: float = 1.0,
                 bias_provider: Optional[dict] = None, hyena_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        out_indices = kwargs.get('out_indices', -1)
        kwargs['out_indices'] = [out_indices] if isinstance(out_indices, int) else list(
            out_indices)
        super().__init__(*args, **kwargs)
        self.names = path_names(self.num_layers)
        num_terms = len(self.names)
        if ensemble_scale not in (None, 'scalar', 'channel'):
            raise ValueError(f"ensemble_scale must be None, 'scalar' or 'channel', got "
                             f'{ensemble_scale!r}')
        shape = (num_terms, ) if ensemble_scale != 'channel' else (num_terms, self.embed_dims)
        init = torch.full(shape, float(scale_init))
        if ensemble_scale is None:
            self.register_buffer('ensemble_scale', init, persistent=False)
        else:
            self.ensemble_scale = nn.Parameter(init)
        self.register_buffer('path_mask', torch.ones(num_terms), persistent=False)
        self.set_pruned(prune_paths)
        if hyena_cfg is not None:
            if self.num_extra_tokens:
                raise ValueError('PathEnsembleViT with hyena_cfg needs with_cls_token=False (the '
                                 'Hyena grid holds only patch tokens)')
            for layer in self.layers:
                mixer = HyenaND(self.embed_dims, **hyena_cfg)
                mixer.out_drop = layer.attn.out_drop
                layer.attn = mixer
        elif bias_provider is not None:
            for layer in self.layers:
                old = layer.attn
                if old.v_shortcut or not isinstance(old.gamma1, nn.Identity):
                    raise NotImplementedError('bias_provider cannot be combined with layer scale '
                                              'or v_shortcut attention')
                new = BiasedSelfAttention(old.embed_dims, old.num_heads,
                                          qkv_bias=old.qkv.bias is not None,
                                          attn_drop=old.attn_drop, proj_drop=old.proj_drop.p,
                                          bias_provider=copy.deepcopy(bias_provider),
                                          num_extra_tokens=self.num_extra_tokens)
                new.load_state_dict(old.state_dict(), strict=False)
                new.out_drop = old.out_drop
                layer.attn = new

    # ----------------------------------------------------------------------------- pruning
    def path_index(self, path: PathSpec) -> int:
        if isinstance(path, str):
            if path not in self.names:
                raise ValueError(f'unknown path {path!r}: use one of embed, attn.<l>, ffn.<l> '
                                 f'with l < {self.num_layers}')
            return self.names.index(path)
        index = int(path)
        if not -len(self.names) <= index < len(self.names):
            raise ValueError(f'path index {index} out of range for {len(self.names)} terms')
        return index % len(self.names)

    def set_pruned(self, paths: Sequence[PathSpec]) -> None:
        """Prune exactly ``paths`` from the final sum (the others are kept)."""
        mask = torch.ones_like(self.path_mask)
        for path in paths:
            mask[self.path_index(path)] = 0.
        self.path_mask.copy_(mask)

    @property
    def pruned(self) -> List[str]:
        return [n for n, m in zip(self.names, self.path_mask.tolist()) if m == 0]

    def path_weights(self) -> Tensor:
        """``m_p·γ_p`` per term: ``(2L+1, 1)`` or ``(2L+1, C)``, broadcastable over tokens."""
        scale = self.ensemble_scale
        if scale.dim() == 1:
            scale = scale[:, None]
        return scale * self.path_mask[:, None].to(scale.dtype)

    # ----------------------------------------------------------------------------- forward
    def embed(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        """Patch embedding, CLS token, position embedding, pre-norm (mmpretrain's ViT)."""
        b = x.shape[0]
        x, hw = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(b, -1, -1), x), dim=1)
        x = x + resize_pos_embed(self.pos_embed, self.patch_resolution, hw,
                                 mode=self.interpolate_mode,
                                 num_extra_tokens=self.num_extra_tokens)
        return self.pre_norm(self.drop_after_pos(x)), hw

    def finalize(self, ensemble: Tensor, hw: Tuple[int, int]) -> Tensor:
        """Final norm + ``out_type`` formatting of an (partial) ensemble: the classifier input."""
        if self.final_norm:
            ensemble = self.ln1(ensemble)
        return self._format_output(ensemble, hw)

    def forward_paths(self, x: Tensor, short_layers: Sequence[int] = (),
                      keep_terms: bool = False) -> Dict[str, object]:
        """Run the ViT and the accumulator. Returns a dict with

        - ``outs``: the backbone outputs (as :meth:`forward`);
        - ``stream``: the final residual stream ``x_L`` (before the final norm); None when
          trailing pruned paths were skipped (see :meth:`last_needed_term`);
        - ``ensemble``: the final accumulator ``Σ m_p γ_p t_p`` (before the final norm);
        - ``short``: ``{l: finalize(partial ensemble after layer l)}`` for ``short_layers``;
        - ``terms``: the ``2L+1`` unweighted terms ``t_p`` (``keep_terms=True``), and ``hw``.
        """
        x, hw = self.embed(x)
        weights = self.path_weights().to(x.dtype)
        acc = x * weights[0]
        terms = [x] if keep_terms else None
        short_layers = {int(i) % self.num_layers for i in short_layers}
        # paths after the last kept term feed nothing that is summed: skip computing them
        stop = self.last_needed_term() if not keep_terms else len(self.names) - 1
        outs, shorts = [], {}
        last = self.num_layers - 1
        for i, layer in enumerate(self.layers):
            if 2 * i + 1 <= stop:
                if isinstance(layer.attn, (BiasedSelfAttention, HyenaND)):
                    attn = layer.attn(layer.ln1(x), hw)
                else:
                    attn = layer.attn(layer.ln1(x))
                x = x + attn
                acc = acc + attn * weights[2 * i + 1]
                if 2 * i + 2 <= stop:
                    ffn = layer.ffn(layer.ln2(x), identity=0)  # the FFN branch alone
                    x = x + ffn
                    acc = acc + ffn * weights[2 * i + 2]
                if keep_terms:
                    terms += [attn, ffn]
            if i in self.out_indices:
                outs.append(self.finalize(acc, hw) if i == last else
                            self._format_output(acc, hw))
            if i in short_layers:
                shorts[i] = self.finalize(acc, hw)
        stream = x if stop == len(self.names) - 1 else None
        return dict(outs=tuple(outs), stream=stream, ensemble=acc, short=shorts, terms=terms,
                    hw=hw)

    def last_needed_term(self) -> int:
        """Index of the last kept term: the paths after it are pruned and feed no kept path, so
        the layers computing only them are skipped (the only compute that pruning saves)."""
        kept = torch.nonzero(self.path_mask).flatten()
        return int(kept[-1]) if kept.numel() else 0

    def active_layers(self) -> float:
        """Layers computed per forward (MSA and FFN halves count ½ each): the cost of pruning."""
        return self.last_needed_term() / 2

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        return self.forward_paths(x)['outs']

    def train(self, mode: bool = True) -> 'PathEnsembleViT':
        super().train(mode)  # mmpretrain's BaseBackbone.train returns None
        return self


def path_self_distillation(student_logits: Sequence[Tensor], teacher_logits: Tensor,
                           temperature: float = 1.0) -> Tensor:
    """Mean over students of ``T²·KL(softmax(teacher/T) ‖ softmax(student/T))`` (batch mean);
    the teacher is detached (knowledge flows from the long paths to the short ones only)."""
    target = F.softmax(teacher_logits.detach().float() / temperature, dim=-1)
    losses = [F.kl_div(F.log_softmax(s.float() / temperature, dim=-1), target,
                       reduction='batchmean') * temperature**2 for s in student_logits]
    return torch.stack(losses).mean()


@MODELS.register_module()
class PathEnsembleClassifier(ImageClassifier):
    """mmpretrain ``ImageClassifier`` + self-distillation from the long paths to the short ones.

    The backbone must be a :class:`PathEnsembleViT`. In ``loss`` the partial ensembles after
    ``distill_layers`` (each = the ensemble of all paths of length ≤ l) are finalised by the
    backbone's final norm, passed through the neck and the *shared* head, and pulled towards the
    full model's logits: ``loss_path_distill = distill_weight · mean_l T²·KL(p_L ‖ p_l)``. The
    head's own loss (CE, mixup targets...) is computed on the full model as usual. Prediction and
    feature extraction are those of ``ImageClassifier``.

    Args:
        distill_layers: layers whose partial ensembles are distilled (negative indices allowed;
            the last layer is the teacher and is skipped). Empty: no distillation.
        distill_weight: weight of the distillation term.
        distill_temperature: softmax temperature T.
    """

    def __init__(self, *args, distill_layers: Sequence[int] = (), distill_weight: float = 1.0,
                 distill_temperature: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.backbone, PathEnsembleViT):
            raise TypeError('PathEnsembleClassifier needs a mmmask.PathEnsembleViT backbone, got '
                            f'{type(self.backbone).__name__}')
        depth = self.backbone.num_layers
        layers = sorted({int(i) % depth for i in distill_layers} - {depth - 1})
        self.distill_layers = layers
        self.distill_weight = distill_weight
        self.distill_temperature = distill_temperature

    def _logits(self, feats: Tuple[Tensor, ...]) -> Tensor:
        if self.with_neck:
            feats = self.neck(feats)
        return self.head(feats)

    def loss(self, inputs: Tensor, data_samples: list) -> dict:
        if not self.distill_layers or self.distill_weight == 0:
            return super().loss(inputs, data_samples)
        res = self.backbone.forward_paths(inputs, short_layers=self.distill_layers)
        feats = res['outs']
        if self.with_neck:
            feats = self.neck(feats)
        losses = self.head.loss(feats, data_samples)
        teacher = self.head(feats)
        students = [self._logits((res['short'][i], )) for i in self.distill_layers]
        losses['loss_path_distill'] = self.distill_weight * path_self_distillation(
            students, teacher, self.distill_temperature)
        return losses
