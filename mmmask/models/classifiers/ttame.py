"""T-TAME: Trainable Attention Mechanism for Explaining CNNs and Vision Transformers
(Ntrougkas, Gkalelis & Mezaris, IEEE Access 2024, arXiv 2403.04523; official code IDT-ITI/T-TAME).

A frozen image classifier is explained by a small trainable *attention module* fed with feature
maps tapped from some of its layers:

* per map: 1x1 conv (C -> C, bias) -> BatchNorm -> + the map itself (skip) -> ReLU, then bilinear
  resize to a common S x S with S = the first map's height capped at 56 (non-square maps are
  stretched to S x S, as in the official ``AttentionTAME``);
* concatenation in layer order -> 1x1 conv to one channel per class = ``c``; ``a = sigmoid(c)``.

Transformer token maps ``[B, N, C]`` are turned into ``[B, C, h, w]`` maps first: the extra (CLS)
token is dropped (TAME) and, for T-TAME, every patch token is multiplied channel-wise by the CLS
token of the same layer (official ``PreprocessSeq.new_forward``).

Training (official ``Generic`` + ``Arrangement.classic_loss``): the frozen model predicts a label;
the mask of that class is upsampled to the input size and multiplies the input; the frozen model
runs again on the masked input and

    loss = 1.5 * CE(masked logits, predicted label) + 2 * mean((A + 5e-4) ** 0.3)
           + 0.01 * [sum|dA/dh|^2 + sum|dA/dw|^2 + 0.3 * sum(border^2)] / (2 * A.size(0)),

where ``A`` is ``a[:, labels]`` (``masking='random'``: every image with every label of the
batch, ``[B, B, S, S]``) or ``a[b, label_b]`` (``'diagonal'``). Inference is one forward pass of
the frozen model plus the attention module. Features are tapped with forward hooks on named
submodules, so any classifier (mmpretrain ``ImageClassifier`` with ``ResNet`` or
``VisionTransformer``, mmmask models, plain ``nn.Module``) can be explained.
"""
import copy
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor

from ...registry import MODELS

__all__ = [
    'TAMEAttention', 'TAMEClassifier', 'tokens_to_maps', 'tame_area_loss',
    'tame_smoothness_loss', 'tame_loss', 'quantile_masked_inputs', 'min_max_normalize',
    'official_ttame_to_mmmask'
]


class TAMEAttention(nn.Module):
    """The (T-)TAME attention module (official ``AttentionTAME`` / ``AttentionTTAME``, identical).

    Args:
        in_channels: channels of each tapped feature map, in layer order.
        num_classes: number of class maps (the explained classifier's classes).
        feat_size: height of the first feature map; the common size is ``min(feat_size, size_cap)``.
        size_cap: cap of the common size (official: 56).

    State-dict keys follow the official module: ``convs.i``, ``bns.i``, ``fuser``.
    """

    def __init__(self, in_channels: Sequence[int], num_classes: int, feat_size: int,
                 size_cap: int = 56) -> None:
        super().__init__()
        if not in_channels:
            raise ValueError('TAMEAttention needs at least one feature map (in_channels is empty)')
        self.in_channels = [int(c) for c in in_channels]
        self.size = int(min(int(feat_size), size_cap))
        self.convs = nn.ModuleList(nn.Conv2d(c, c, kernel_size=1, bias=True)
                                   for c in self.in_channels)
        self.bns = nn.ModuleList(nn.BatchNorm2d(c) for c in self.in_channels)
        self.relu = nn.ReLU()
        self.fuser = nn.Conv2d(sum(self.in_channels), num_classes, kernel_size=1, bias=True)

    @classmethod
    def from_feature_shapes(cls, shapes: Sequence[Sequence[int]], num_classes: int,
                            size_cap: int = 56) -> 'TAMEAttention':
        """Build from ``[B, C, H, W]`` shapes, as the official constructor's ``ft_size``."""
        return cls([s[1] for s in shapes], num_classes, shapes[0][2], size_cap)

    def forward(self, features: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """Return ``(a, c)``: class masks ``sigmoid(c)`` and fuser logits, ``[B, K, S, S]``."""
        features = list(features)
        if len(features) != len(self.convs):
            raise ValueError(f'expected {len(self.convs)} feature maps, got {len(features)}')
        maps = []
        for conv, bn, feat in zip(self.convs, self.bns, features):
            out = self.relu(bn(conv(feat)) + feat)
            maps.append(F.interpolate(out, size=(self.size, self.size), mode='bilinear',
                                      align_corners=False))
        c = self.fuser(torch.cat(maps, dim=1))
        return torch.sigmoid(c), c


def tokens_to_maps(tokens: Tensor, num_extra_tokens: int = 1, hw: Optional[Tuple[int, int]] = None,
                   cls_weighted: bool = True) -> Tensor:
    """Transformer tokens ``[B, N, C]`` -> ``[B, C, h, w]`` map (official ``PreprocessSeq``).

    The first ``num_extra_tokens`` tokens are dropped; the rest are reshaped row-major to ``hw``
    (default: square). ``cls_weighted`` (T-TAME) multiplies each patch token by token 0 per channel.
    """
    if tokens.dim() != 3:
        raise ValueError(f'token features must be [B, N, C], got {tuple(tokens.shape)}')
    b, n, ch = tokens.shape
    patches = tokens[:, num_extra_tokens:]
    if hw is None:
        side = int(round(math.sqrt(n - num_extra_tokens)))
        if side * side != n - num_extra_tokens:
            raise ValueError(f'{n - num_extra_tokens} patch tokens are not a square grid; '
                             'pass token_hw=(h, w)')
        hw = (side, side)
    maps = patches.reshape(b, hw[0], hw[1], ch).permute(0, 3, 1, 2)
    if cls_weighted:
        if num_extra_tokens < 1:
            raise ValueError('T-TAME weights patch tokens by the CLS token: num_extra_tokens >= 1')
        maps = maps * tokens[:, 0, :, None, None]
    return maps


def tame_area_loss(masks: Tensor, power: float = 0.3, eps: float = 5e-4) -> Tensor:
    """Area term ``mean((masks + eps) ** power)`` (official ``Arrangement.area_loss``)."""
    if power != 1:
        masks = (masks + eps)**power
    return masks.mean()


def tame_smoothness_loss(masks: Tensor, power: float = 2, border_penalty: float = 0.3) -> Tensor:
    """Total-variation term of TAME (official ``Arrangement.smoothness_loss``, 4-D masks).

    ``[sum|Δh|^p + sum|Δw|^p + border_penalty * sum(first/last rows and columns ^ p)] / (p * B)``;
    corner pixels are counted twice in the border term, as in the official code.
    """
    dh = (masks[:, :, 1:, :] - masks[:, :, :-1, :]).abs().pow(power).sum()
    dw = (masks[:, :, :, 1:] - masks[:, :, :, :-1]).abs().pow(power).sum()
    border = masks.new_zeros(())
    if border_penalty > 0:
        border = float(border_penalty) * (
            masks[:, :, -1, :].pow(power) + masks[:, :, 0, :].pow(power)
            + masks[:, :, :, -1].pow(power) + masks[:, :, :, 0].pow(power)).sum()
    return (dh + dw + border) / float(power * masks.size(0))


def tame_loss(logits: Tensor, labels: Tensor, masks: Tensor, ce_weight: float = 1.5,
              area_weight: float = 2.0, smoothness_weight: float = 0.01, area_power: float = 0.3,
              area_eps: float = 5e-4, smoothness_power: float = 2,
              border_penalty: float = 0.3) -> Dict[str, Tensor]:
    """The published T-TAME loss (official ``classic_loss``): weighted CE, area and smoothness."""
    return dict(
        loss_ce=ce_weight * F.cross_entropy(logits, labels.long()),
        loss_area=area_weight * tame_area_loss(masks, area_power, area_eps),
        loss_smooth=smoothness_weight * tame_smoothness_loss(masks, smoothness_power,
                                                             border_penalty))


def min_max_normalize(maps: Tensor, eps: float = 1e-10) -> Tensor:
    """Per-sample min-max normalisation of ``[B, ...]`` maps (official ``normalizeMinMax``)."""
    flat = maps.flatten(1)
    lo = flat.min(dim=1).values.view(-1, *([1] * (maps.dim() - 1)))
    hi = flat.max(dim=1).values.view(-1, *([1] * (maps.dim() - 1)))
    return (maps - lo) / (hi - lo + eps)


def quantile_masked_inputs(raw: Tensor, maps: Tensor,
                           drop_fractions: Sequence[float] = (0.0, 0.5, 0.85)) -> List[Tensor]:
    """Masked raw images for AD/IC (official ``get_masked_inputs``).

    ``maps`` ``[B, 1, h, w]`` (min-max normalised) are bilinearly resized to the image; for each
    fraction ``p`` the values below the per-image ``p``-quantile are zeroed and the remaining *soft*
    map multiplies the raw image (``p = 0``: the whole soft map, i.e. "100 %" kept; 0.5: 50 %;
    0.85: 15 %).
    """
    if maps.dim() == 3:
        maps = maps[:, None]
    maps = F.interpolate(maps.float(), size=raw.shape[-2:], mode='bilinear', align_corners=False)
    flat = maps.flatten(1)
    out = []
    for p in drop_fractions:
        q = flat.quantile(float(p), dim=1).view(-1, 1, 1, 1)
        out.append(maps.masked_fill(maps < q, 0) * raw)
    return out


def _build_model(cfg: Union[dict, nn.Module]) -> nn.Module:
    """Build a classifier config; unscoped types fall back to mmpretrain's registry."""
    if isinstance(cfg, nn.Module):
        return cfg
    cfg = copy.deepcopy(dict(cfg))
    typ = cfg.get('type')
    if isinstance(typ, str) and '.' not in typ and MODELS.get(typ) is None:
        cfg['type'] = f'mmpretrain.{typ}'
    return MODELS.build(cfg)


@MODELS.register_module()
class TAMEClassifier(BaseModel):
    """A frozen classifier + a trainable (T-)TAME attention module (one model for mmengine).

    Args:
        classifier: the explained classifier: a model config (e.g. an mmpretrain ``ImageClassifier``
            with ``ResNet`` / ``VisionTransformer``) or an ``nn.Module``. mmengine ``BaseModel``
            classifiers are called with ``mode='tensor'`` (logits), others as ``model(x)``.
            Its parameters are frozen.
        feature_layers: names of the classifier's submodules whose outputs are the feature maps
            (e.g. ``backbone.layer2/3/4`` of a ResNet; ``backbone.layers.9.ln1`` ... of a mmpretrain
            ViT, the official ``encoder_layer_k.ln`` = the block's first LayerNorm).
        classifier_checkpoint: optional checkpoint of the classifier, loaded in ``init_weights``.
        version: ``'TTAME'`` (token maps weighted by the CLS token) or ``'TAME'`` (CLS dropped);
            used for token features only.
        num_classes: class maps; default: the classifier's number of logits.
        input_size: ``(H, W)`` of the dry run that measures the feature shapes.
        num_extra_tokens / token_hw: token layout of transformer features (default: 1 CLS token, a
            square patch grid).
        size_cap: cap of the common map size (official 56).
        train_method: ``'new'`` multiplies the preprocessed (normalised) input by the mask (official
            ``new``, the ViT scripts); ``'raw_normalize'`` multiplies the raw image and normalises
            again (official ``raw_normalize``, ResNet-50/VGG-16 scripts). The normalisation is the
            data preprocessor's ``mean``/``std`` unless ``mean``/``std`` are given.
        masking: which masks enter the area/smoothness loss: ``'random'`` (official default,
            ``a[:, labels]``) or ``'diagonal'`` (``a[b, label_b]``).
        mask_size: size the class mask is upsampled to before masking (official: hard-coded 224);
            default: the input's size.
        body_train_mode: run the frozen classifier in the wrapper's mode (official quirk: BN layers
            of the frozen model use batch statistics and update their running stats during T-TAME
            training). Default False keeps the classifier in eval mode.
        loss weights: ``ce_weight`` 1.5, ``area_weight`` 2, ``smoothness_weight`` 0.01,
            ``area_power`` 0.3 (paper).
        drop_fractions: if not None, ``predict`` also scores the classifier on the input masked by
            the explanation with these fractions of pixels removed (AD/IC, official 0/0.5/0.85).
        data_preprocessor: default: the classifier config's ``data_preprocessor``.
    """

    def __init__(self,
                 classifier: Union[dict, nn.Module],
                 feature_layers: Sequence[str],
                 classifier_checkpoint: Optional[str] = None,
                 version: str = 'TTAME',
                 num_classes: Optional[int] = None,
                 input_size: Tuple[int, int] = (224, 224),
                 num_extra_tokens: int = 1,
                 token_hw: Optional[Tuple[int, int]] = None,
                 size_cap: int = 56,
                 train_method: str = 'new',
                 masking: str = 'random',
                 mask_size: Optional[Tuple[int, int]] = None,
                 body_train_mode: bool = False,
                 ce_weight: float = 1.5,
                 area_weight: float = 2.0,
                 smoothness_weight: float = 0.01,
                 area_power: float = 0.3,
                 drop_fractions: Optional[Sequence[float]] = None,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if version not in ('TTAME', 'TAME'):
            raise ValueError(f"version={version!r}: use 'TTAME' or 'TAME'")
        if train_method not in ('new', 'raw_normalize'):
            raise ValueError(f"train_method={train_method!r}: use 'new' or 'raw_normalize'")
        if masking not in ('random', 'diagonal'):
            raise ValueError(f"masking={masking!r}: use 'random' or 'diagonal'")
        if not feature_layers:
            raise ValueError('feature_layers is empty: name the classifier submodules to tap, '
                             "e.g. ['backbone.layer2', 'backbone.layer3', 'backbone.layer4']")
        if data_preprocessor is None and isinstance(classifier, dict):
            data_preprocessor = classifier.get('data_preprocessor')
        if isinstance(data_preprocessor, dict):
            typ = str(data_preprocessor.get('type', 'ClsDataPreprocessor'))
            if '.' not in typ and MODELS.get(typ) is None:
                typ = f'mmpretrain.{typ}'
            data_preprocessor = dict(data_preprocessor, type=typ)
        if data_preprocessor is None and isinstance(classifier, dict):
            data_preprocessor = dict(type='mmpretrain.ClsDataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.classifier = _build_model(classifier)
        self.classifier.requires_grad_(False)
        self.classifier_checkpoint = classifier_checkpoint
        self.feature_layers = list(feature_layers)
        self.version = version
        self.num_extra_tokens = num_extra_tokens
        self.token_hw = tuple(token_hw) if token_hw is not None else None
        self.train_method = train_method
        self.masking = masking
        self.mask_size = tuple(mask_size) if mask_size is not None else None
        self.body_train_mode = body_train_mode
        self.loss_weights = dict(ce_weight=ce_weight, area_weight=area_weight,
                                 smoothness_weight=smoothness_weight, area_power=area_power)
        self.drop_fractions = list(drop_fractions) if drop_fractions is not None else None
        self._mean = None if mean is None else torch.tensor(mean, dtype=torch.float32)
        self._std = None if std is None else torch.tensor(std, dtype=torch.float32)

        self._captured: Optional[List[Tensor]] = None
        self._hooks = []
        for name in self.feature_layers:
            try:
                module = self.classifier.get_submodule(name)
            except AttributeError as err:
                raise ValueError(f'feature layer {name!r} is not a submodule of the classifier '
                                 f'({type(self.classifier).__name__}); names are relative to it, '
                                 "e.g. 'backbone.layer3'") from err
            self._hooks.append(module.register_forward_hook(self._capture_hook))

        # dry run (official Generic does the same) to size the attention module
        was_training = self.classifier.training
        self.classifier.eval()
        with torch.no_grad():
            logits, feats = self._run(torch.zeros(2, 3, *input_size), capture=True)
        self.classifier.train(was_training)
        shapes = [tuple(f.shape) for f in feats]
        self.token_features = [len(s) == 3 for s in shapes]
        maps = self._to_maps(feats)
        self.num_classes = int(num_classes or logits.shape[1])
        self.attention = TAMEAttention([m.shape[1] for m in maps], self.num_classes,
                                       maps[0].shape[2], size_cap)
        self.train(self.training)

    # ----------------------------------------------------------------- frozen classifier
    def _capture_hook(self, module: nn.Module, args, output) -> None:
        if self._captured is not None:
            self._captured.append(output[0] if isinstance(output, (tuple, list)) else output)

    def _run(self, x: Tensor, capture: bool) -> Tuple[Tensor, List[Tensor]]:
        """Frozen classifier logits (and the tapped features when ``capture``)."""
        self._captured = [] if capture else None
        try:
            if isinstance(self.classifier, BaseModel):
                out = self.classifier(x, mode='tensor')
            else:
                out = self.classifier(x)
            feats = self._captured or []
        finally:
            self._captured = None
        if isinstance(out, (tuple, list)):
            out = out[-1]
        if capture and len(feats) != len(self.feature_layers):
            raise RuntimeError(f'captured {len(feats)} feature maps for {len(self.feature_layers)}'
                               ' feature layers (a layer ran more than once, or not at all)')
        return out, feats

    def _to_maps(self, feats: Sequence[Tensor]) -> List[Tensor]:
        maps = []
        for f in feats:
            if f.dim() == 3:
                maps.append(tokens_to_maps(f, self.num_extra_tokens, self.token_hw,
                                           cls_weighted=self.version == 'TTAME'))
            elif f.dim() == 4:
                maps.append(f)
            else:
                raise ValueError(f'feature of shape {tuple(f.shape)}: expected [B, C, H, W] maps '
                                 'or [B, N, C] tokens')
        return maps

    def train(self, mode: bool = True) -> 'TAMEClassifier':
        super().train(mode)
        if not self.body_train_mode:
            self.classifier.eval()
        return self

    def init_weights(self) -> None:
        super().init_weights()
        if self.classifier_checkpoint:
            from mmengine.logging import print_log
            from mmengine.runner.checkpoint import _load_checkpoint
            ckpt = _load_checkpoint(self.classifier_checkpoint, map_location='cpu')
            sd = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
            sd = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in sd.items()}
            missing, unexpected = self.classifier.load_state_dict(sd, strict=False)
            if missing:
                raise KeyError(f'{self.classifier_checkpoint} lacks {len(missing)} weights of the '
                               f'classifier to explain, e.g. {missing[:5]}: is it a checkpoint of '
                               'the model in `classifier`?')
            if unexpected:
                print_log(f'T-TAME: ignored {len(unexpected)} checkpoint keys not in the '
                          f'classifier, e.g. {unexpected[:5]}', logger='current')
        self.classifier.requires_grad_(False)

    def _norm_stats(self, ref: Tensor) -> Tuple[Tensor, Tensor]:
        if self._mean is not None:
            mean, std = self._mean, self._std
        else:
            pre = self.data_preprocessor
            if getattr(pre, '_enable_normalize', False):
                mean, std = pre.mean.flatten(), pre.std.flatten()
            else:
                return ref.new_zeros(1, 1, 1, 1), ref.new_ones(1, 1, 1, 1)
        return mean.to(ref).view(1, -1, 1, 1), std.to(ref).view(1, -1, 1, 1)

    def to_raw(self, inputs: Tensor) -> Tensor:
        """Undo the normalisation of preprocessed inputs (raw pixels, e.g. 0-255)."""
        mean, std = self._norm_stats(inputs)
        return inputs * std + mean

    def from_raw(self, raw: Tensor) -> Tensor:
        mean, std = self._norm_stats(raw)
        return (raw - mean) / std

    # ----------------------------------------------------------------- explanation
    def explain(self, inputs: Tensor) -> Dict[str, Tensor]:
        """One pass: frozen ``logits``, predicted ``labels``, class masks ``a`` and logits ``c``."""
        if self.training and not self.body_train_mode:
            self.classifier.eval()
        with torch.no_grad():
            logits, feats = self._run(inputs, capture=True)
        a, c = self.attention(self._to_maps(feats))
        return dict(logits=logits, labels=logits.argmax(dim=1), a=a, c=c)

    def masked_logits(self, inputs: Tensor, a: Tensor, labels: Tensor) -> Tensor:
        """Official train policy: the predicted class's mask, upsampled, multiplies the input."""
        mask = a[torch.arange(a.size(0), device=a.device), labels][:, None]
        size = self.mask_size or tuple(inputs.shape[-2:])
        mask = F.interpolate(mask, size=size, mode='bilinear', align_corners=False)
        if self.train_method == 'new':
            masked = mask * inputs
        else:
            masked = self.from_raw(mask * self.to_raw(inputs))
        return self._run(masked, capture=False)[0]

    def loss_masks(self, a: Tensor, labels: Tensor) -> Tensor:
        """Masks that enter the area/smoothness terms (official ``Generic.get_a``)."""
        if self.masking == 'random':
            return a[:, labels]
        return a[torch.arange(a.size(0), device=a.device), labels][:, None]

    def forward(self, inputs: Tensor, data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            out = self.explain(inputs)
            return out['logits'], out['a'], out['c']
        raise RuntimeError(f'Invalid mode "{mode}".')

    def loss(self, inputs: Tensor, data_samples: Optional[list] = None) -> Dict[str, Tensor]:
        """The published loss on the masked-input logits for the frozen model's prediction."""
        out = self.explain(inputs)
        labels = out['labels']
        logits = self.masked_logits(inputs, out['a'], labels)
        w = self.loss_weights
        losses = tame_loss(logits, labels, self.loss_masks(out['a'], labels),
                           ce_weight=w['ce_weight'], area_weight=w['area_weight'],
                           smoothness_weight=w['smoothness_weight'], area_power=w['area_power'])
        losses['masked_acc'] = (logits.argmax(1) == labels).float().mean().detach()
        losses['mask_mean'] = out['a'][torch.arange(len(labels)), labels].mean().detach()
        return losses

    @torch.no_grad()
    def masked_scores(self, inputs: Tensor, c: Tensor, labels: Tensor,
                      drop_fractions: Sequence[float]) -> Tensor:
        """Softmax score of ``labels`` on the raw input masked by the explanation (official AD/IC
        protocol: min-max normalised ``c`` of the class, quantile thresholds, re-normalised);
        ``[B, len(drop_fractions)]``."""
        maps = min_max_normalize(c[torch.arange(c.size(0), device=c.device), labels][:, None])
        raw = self.to_raw(inputs)
        scores = []
        for masked in quantile_masked_inputs(raw, maps, drop_fractions):
            probs = self._run(self.from_raw(masked), capture=False)[0].softmax(dim=1)
            scores.append(probs.gather(1, labels[:, None])[:, 0])
        return torch.stack(scores, dim=1)

    @torch.no_grad()
    def predict(self, inputs: Tensor, data_samples: Optional[list] = None) -> list:
        """Frozen predictions + ``explanation`` (class mask of the predicted class, ``[S, S]``
        in [0, 1]) per sample; with ``drop_fractions``, also ``masked_scores``."""
        from mmpretrain.structures import DataSample
        out = self.explain(inputs)
        probs = out['logits'].softmax(dim=1)
        labels = out['labels']
        idx = torch.arange(len(labels), device=labels.device)
        explanation = out['a'][idx, labels]
        masked = None
        if self.drop_fractions:
            masked = self.masked_scores(inputs, out['c'], labels, self.drop_fractions)
        if data_samples is None:
            data_samples = [DataSample() for _ in range(len(labels))]
        for i, sample in enumerate(data_samples):
            sample.set_pred_score(probs[i]).set_pred_label(labels[i])
            sample.set_field(explanation[i], 'explanation', field_type='data')
            sample.set_field(out['c'][i, labels[i]], 'explanation_logits', field_type='data')
            if masked is not None:
                sample.set_field(masked[i], 'masked_scores', field_type='metainfo')
                sample.set_field(list(self.drop_fractions), 'drop_fractions', field_type='metainfo')
        return data_samples


def official_ttame_to_mmmask(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Map official T-TAME attention keys to :class:`TAMEClassifier` keys.

    Accepts a Lightning checkpoint's ``state_dict`` (``generic.attn_mech.*``), a ``Generic``
    state dict (``attn_mech.*``; ``attn_mech.1.*`` for ViTs, where index 0 is the parameter-free
    token preprocessing) or a bare attention module (``convs.*``, ``bns.*``, ``fuser.*``). Returns
    ``attention.*`` keys; the frozen body's keys (torchvision names) are dropped — the classifier
    comes from its own (mmpretrain) checkpoint.
    """
    out = {}
    for key, value in state_dict.items():
        k = key
        for prefix in ('generic.', 'module.'):
            if k.startswith(prefix):
                k = k[len(prefix):]
        if k.startswith('attn_mech.1.'):
            k = k[len('attn_mech.1.'):]
        elif k.startswith('attn_mech.'):
            k = k[len('attn_mech.'):]
        elif k.split('.')[0] not in ('convs', 'bns', 'fuser'):
            continue
        out['attention.' + k] = value
    if not out:
        raise ValueError('no T-TAME attention keys (attn_mech.*, convs.*, bns.*, fuser.*) found')
    return out
