"""Input-masking strategies and their evaluation (Balasubramanian & Feizi, "Towards Improved Input
Masking for Convolutional Neural Networks", ICCV 2023; official code SriramB-98/layer_masking).

Removing part of an image from a CNN's view is usually done by painting it grey or black. The
paper shows that this causes *missingness bias* (the painted region is itself evidence: predictions
drift to unrelated classes) and leaks the *mask shape* (a grey object silhouette is still
recognisable), and proposes *layer masking* (:class:`~mmmask.models.LayerMaskedResNet`). This
module holds the strategies and the measures:

* strategies: :func:`fill_input` (grey = the preprocessor's mean colour, i.e. 0 after
  normalisation, black = pixel 0) on a plain model, layer masking via :func:`to_layer_masked` /
  :class:`MaskingPredictor`;
* segments: :func:`patch_segments`, :func:`superpixel_segments` (a small SLIC-style k-means);
* LIME: :func:`lime_attributions` (LIME-image's cosine kernel and ridge surrogate), its weighted
  R² (how linear the model is under the masking) and :func:`deletion_curve`;
* :class:`LayerMaskedImageClassifier` (an mmpretrain ``ImageClassifier`` reading each image's mask
  from its data sample's ``layer_mask`` field) and :class:`RandomPatchRemoval` (a pipeline step
  that removes random patches, as a ``layer_mask`` field or as grey/black paint), so that
  ``tools/test.py`` measures accuracy under removal for every strategy;
* :func:`missingness_bias` (prediction flips, drift of the predicted-class histogram, confidence
  drop under random segment removal) and :func:`mask_shape_leak` (how often the class survives the
  removal of the object with an object-shaped hole vs a shapeless box / the notebook's rolled mask).
"""
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmpretrain.models.classifiers import ImageClassifier
from torch import Tensor, nn

from mmmask.models.backbones.layer_masked_resnet import LayerMaskedResNet, use_layer_mask
from mmmask.registry import MODELS, TRANSFORMS

__all__ = ['LayerMaskedImageClassifier', 'RandomPatchRemoval', 'fill_input', 'to_layer_masked',
           'MaskingPredictor', 'STRATEGIES', 'patch_segments',
           'superpixel_segments', 'segments_to_masks', 'lime_attributions', 'deletion_curve',
           'missingness_bias', 'mask_shape_leak', 'rolled_mask', 'box_mask',
           'toy_object_removal_set']

#: grey / black input fill on the plain model, layer masking in its three modes.
STRATEGIES = ('grey', 'black', 'layer', 'layer_zero', 'layer_pconv')


def fill_input(inputs: Tensor, mask: Tensor, fill: Union[str, float, Tensor] = 'grey',
               mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None
               ) -> Tensor:
    """Input-masking baseline: ``x·m + v·(1 − m)`` on *normalised* inputs ``(B, C, H, W)``.

    ``fill='grey'`` paints the normalisation mean colour (0 after normalisation; the paper's
    "greyout" with ImageNet mean), ``'black'`` pixel value 0 (``−mean/std``, needs ``mean`` and
    ``std``), a float or a ``(C,)`` tensor a value in normalised units. ``mask``:
    ``(B|1, [1,] H, W)``, 1 = keep.
    """
    if mask.dim() == 3:
        mask = mask[:, None]
    mask = mask.to(inputs)
    if isinstance(fill, str):
        if fill == 'grey':
            value = inputs.new_zeros(inputs.shape[1])
        elif fill == 'black':
            if mean is None or std is None:
                raise ValueError("fill='black' needs the preprocessor mean and std")
            value = -torch.as_tensor(mean, dtype=inputs.dtype, device=inputs.device).flatten() / \
                torch.as_tensor(std, dtype=inputs.dtype, device=inputs.device).flatten()
        else:
            raise ValueError(f"fill must be 'grey', 'black', a float or a tensor, got {fill!r}")
    else:
        value = torch.as_tensor(fill, dtype=inputs.dtype, device=inputs.device).flatten()
        value = value.expand(inputs.shape[1]) if value.numel() == 1 else value
    return inputs * mask + value.view(1, -1, 1, 1) * (1 - mask)


def to_layer_masked(model: nn.Module, mode: str = 'fill') -> nn.Module:
    """Give an mmpretrain classifier (or a bare ``ResNet``) layer masking, in place.

    Its mmpretrain ``ResNet``/``ResNetV1c``/``ResNetV1d`` backbone becomes a
    :class:`LayerMaskedResNet` (same modules and weights); a ``GlobalAveragePooling`` neck is
    replaced by the backbone's masked pooling ``mean(x·m)/mean(m)``, as in the official ResNet.
    Without a mask the model computes exactly what it did before.
    """
    from mmpretrain.models.backbones.resnet import ResNet
    from mmpretrain.models.necks import GlobalAveragePooling
    backbone = getattr(model, 'backbone', model)
    if not isinstance(backbone, LayerMaskedResNet):
        if not isinstance(backbone, ResNet) or type(backbone).forward is not ResNet.forward:
            raise TypeError('layer masking needs an mmpretrain ResNet backbone (ResNet, '
                            'ResNetV1c, ResNetV1d or mmmask.LayerMaskedResNet), got '
                            f'{type(backbone).__name__}')
        backbone.__class__ = LayerMaskedResNet
        backbone.mask_mode, backbone.masked_pooling, backbone._mask = mode, False, None
    backbone.set_mask(None, mode)
    neck = getattr(model, 'neck', None)
    if neck is not None and isinstance(neck, GlobalAveragePooling) and neck.gap.output_size in (
            1, (1, 1)) and not backbone.masked_pooling:
        backbone.masked_pooling = True
        model.neck = None
    return model


class MaskingPredictor:
    """Class probabilities of a classifier under an input-masking strategy.

    ``predictor(inputs, masks, strategy)`` with normalised ``inputs (B, 3, H, W)`` (or one image
    ``(3, H, W)`` broadcast over the masks) and ``masks (N, H, W)``, 1 = keep; strategies in
    :data:`STRATEGIES`. The model is converted with :func:`to_layer_masked` (in place).
    """

    def __init__(self, model: nn.Module, batch_size: int = 64) -> None:
        self.model = to_layer_masked(model).eval()
        self.batch_size = batch_size
        pre = getattr(model, 'data_preprocessor', None)
        self.mean = getattr(pre, 'mean', None)
        self.std = getattr(pre, 'std', None)
        if self.mean is not None and not getattr(pre, '_enable_normalize', True):
            self.mean = self.std = None

    @torch.no_grad()
    def logits(self, inputs: Tensor, masks: Tensor, strategy: str) -> Tensor:
        if strategy not in STRATEGIES:
            raise ValueError(f'strategy must be one of {STRATEGIES}, got {strategy!r}')
        if masks.dim() == 4:
            masks = masks[:, 0]
        if inputs.dim() == 3:
            inputs = inputs[None].expand(masks.shape[0], -1, -1, -1)
        outs = []
        for start in range(0, masks.shape[0], self.batch_size):
            x = inputs[start:start + self.batch_size]
            m = masks[start:start + self.batch_size].to(x)
            if strategy in ('grey', 'black'):
                mean = None if self.mean is None else self.mean.flatten().tolist()
                std = None if self.std is None else self.std.flatten().tolist()
                if strategy == 'black' and mean is None:
                    mean, std = [0.0] * x.shape[1], [1.0] * x.shape[1]
                outs.append(self.model(fill_input(x, m, strategy, mean, std), mode='tensor'))
            else:
                mode = {'layer': 'fill', 'layer_zero': 'zero', 'layer_pconv': 'pconv'}[strategy]
                with use_layer_mask(self.model, m, mode):
                    outs.append(self.model(x, mode='tensor'))
        return torch.cat(outs)

    def __call__(self, inputs: Tensor, masks: Tensor, strategy: str) -> Tensor:
        return self.logits(inputs, masks, strategy).softmax(-1)


# ----------------------------------------------------------------------------------- segments
def patch_segments(h: int, w: int, patch: int) -> Tensor:
    """``(H, W)`` int map of a grid of ``patch × patch`` squares (row-major ids)."""
    rows = torch.arange(h) // patch
    cols = torch.arange(w) // patch
    return rows[:, None] * ((w + patch - 1) // patch) + cols[None, :]


def superpixel_segments(image: Tensor, n_segments: int = 16, compactness: float = 10.0,
                        iters: int = 10) -> Tensor:
    """SLIC-style superpixels: k-means on (colour, compactness-scaled position) started from a
    grid, every pixel compared with every centre (fine for the small images of the tools).
    ``image (C, H, W)`` in any range; returns an ``(H, W)`` map with consecutive ids."""
    c, h, w = image.shape
    img = image.float()
    img = (img - img.mean((1, 2), keepdim=True)) / (img.std() + 1e-6)
    step = max(1.0, (h * w / n_segments) ** 0.5)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(w, dtype=torch.float32), indexing='ij')
    scale = compactness / 10.0 / step
    feats = torch.cat([img.reshape(c, -1), ys.reshape(1, -1) * scale,
                       xs.reshape(1, -1) * scale]).T  # (HW, C+2)
    gy = torch.arange(step / 2, h, step)
    gx = torch.arange(step / 2, w, step)
    cy, cx = torch.meshgrid(gy, gx, indexing='ij')
    idx = (cy.round().long().clamp(max=h - 1) * w + cx.round().long().clamp(max=w - 1)).flatten()
    centres = feats[idx].clone()
    for _ in range(iters):
        assign = torch.cdist(feats, centres).argmin(1)
        for k in range(centres.shape[0]):
            sel = assign == k
            if sel.any():
                centres[k] = feats[sel].mean(0)
    assign = torch.cdist(feats, centres).argmin(1)
    _, labels = torch.unique(assign, return_inverse=True)
    return labels.reshape(h, w)


def segments_to_masks(segments: Tensor, keep: Tensor) -> Tensor:
    """``(N, H, W)`` masks from an ``(H, W)`` segment map and ``(N, S)`` binary keep vectors."""
    keep = torch.as_tensor(keep, dtype=torch.float32)
    return keep[:, segments.long()]


# ----------------------------------------------------------------------------------- LIME
def lime_attributions(predict: Callable[[Tensor], Tensor], num_segments: int,
                      num_samples: int = 200, kernel_width: float = 0.25, ridge: float = 1.0,
                      seed: int = 0) -> Dict[str, object]:
    """LIME (Ribeiro et al.) as in ``lime_image`` (the official repo's copy): binary keep vectors
    ``z`` (the first all ones, the rest uniform), ``predict(z) -> (N,)`` target probabilities, a
    ridge regression weighted by ``sqrt(exp(−d²/w²))``, ``d`` the cosine distance to all-ones.

    Returns ``coef (S,)``, ``intercept``, ``r2`` (weighted R² of the surrogate: higher = the model
    is closer to linear in the segments under this masking), ``samples`` and ``targets``.
    """
    gen = torch.Generator().manual_seed(seed)
    z = torch.randint(0, 2, (num_samples, num_segments), generator=gen).float()
    z[0] = 1
    y = predict(z).double().flatten()
    zd = z.double()
    cos = (zd.sum(1) / (zd.norm(dim=1) * num_segments ** 0.5 + 1e-12)).clamp(max=1)
    dist = 1 - cos
    weights = torch.sqrt(torch.exp(-dist ** 2 / kernel_width ** 2))
    design = torch.cat([zd, zd.new_ones(num_samples, 1)], 1)
    wsum = weights.sum()
    reg = torch.eye(num_segments + 1, dtype=torch.float64) * ridge
    reg[-1, -1] = 0  # no penalty on the intercept (sklearn Ridge)
    lhs = design.T @ (design * weights[:, None]) + reg
    theta = torch.linalg.solve(lhs, design.T @ (weights * y))
    pred = design @ theta
    ybar = (weights * y).sum() / wsum
    ss_res = (weights * (y - pred) ** 2).sum()
    ss_tot = (weights * (y - ybar) ** 2).sum()
    r2 = float(1 - ss_res / ss_tot) if ss_tot > 0 else 1.0
    return dict(coef=theta[:-1].float(), intercept=float(theta[-1]), r2=r2, samples=z,
                targets=y.float())


def deletion_curve(predict: Callable[[Tensor], Tensor], ranking: Tensor, num_segments: int
                   ) -> Tensor:
    """Target probability after removing the ``k`` top-ranked segments, ``k = 0..S`` (lower area
    under it = the attribution found what the model uses, *under the same masking*)."""
    keeps = torch.ones(num_segments + 1, num_segments)
    for k in range(1, num_segments + 1):
        keeps[k:, ranking[k - 1]] = 0
    return predict(keeps).float().flatten()


# ----------------------------------------------------------------------------------- biases
def missingness_bias(clean_probs: Tensor, masked_probs: Tensor) -> Dict[str, float]:
    """How much removing (uninformative) parts moves a classifier (the paper's missingness bias).

    ``clean_probs (N, K)`` and ``masked_probs (N, K)`` (the same images, a random part removed):
    ``flip_rate`` (argmax changes), ``class_drift`` (KL divergence of the masked prediction
    histogram from the clean one, add-one smoothed: a strategy that pushes images to a few "mask
    classes" drifts), ``top_class_share`` (share of the most frequent masked prediction) and
    ``confidence_drop`` (mean drop of the clean-argmax probability).
    """
    k = clean_probs.shape[1]
    clean, masked = clean_probs.argmax(1), masked_probs.argmax(1)
    h_clean = torch.bincount(clean, minlength=k).double() + 1
    h_masked = torch.bincount(masked, minlength=k).double() + 1
    p, q = h_masked / h_masked.sum(), h_clean / h_clean.sum()
    conf_clean = clean_probs.gather(1, clean[:, None])
    conf_masked = masked_probs.gather(1, clean[:, None])
    return dict(flip_rate=float((clean != masked).float().mean()),
                class_drift=float((p * (p / q).log()).sum()),
                top_class_share=float(torch.bincount(masked, minlength=k).max()) / len(masked),
                confidence_drop=float((conf_clean - conf_masked).mean()))


def mask_shape_leak(labels: Tensor, clean_probs: Tensor, shaped_probs: Tensor,
                    shapeless_probs: Tensor) -> Dict[str, float]:
    """The paper's mask-shape bias: after the *object* is removed, a model should not recognise
    it any more; if it still does with an object-shaped hole more than with a shapeless hole
    covering the same object, the hole's shape leaks the class.

    Over the images the clean model gets right: ``acc_shaped`` (class kept with the object-shaped
    hole), ``acc_shapeless`` (with a box / rolled hole) and ``leak = acc_shaped − acc_shapeless``;
    ``shaped_label_prob``: mean probability of the true class with the shaped hole.
    """
    labels = torch.as_tensor(labels).long()
    right = clean_probs.argmax(1) == labels
    if not right.any():
        raise ValueError('mask_shape_leak: the clean model classifies none of the images')
    acc_shaped = float((shaped_probs.argmax(1) == labels)[right].float().mean())
    acc_shapeless = float((shapeless_probs.argmax(1) == labels)[right].float().mean())
    return dict(acc_shaped=acc_shaped, acc_shapeless=acc_shapeless,
                leak=acc_shaped - acc_shapeless,
                shaped_label_prob=float(shaped_probs.gather(1, labels[:, None])[right].mean()),
                num_images=int(right.sum()))


def rolled_mask(mask: Tensor) -> Tensor:
    """The notebook's "broken" mask: the removed region moved by half the image in both axes."""
    h, w = mask.shape[-2:]
    return torch.roll(mask, shifts=(h // 2, w // 2), dims=(-2, -1))


def box_mask(mask: Tensor, margin: int = 1) -> Tensor:
    """A shapeless hole: the bounding box (plus ``margin``) of each mask's removed region."""
    out = torch.ones_like(mask)
    for i in range(mask.shape[0]):
        ys, xs = torch.nonzero(mask[i] < 0.5, as_tuple=True)
        if len(ys):
            h, w = mask.shape[-2:]
            out[i, max(0, int(ys.min()) - margin):min(h, int(ys.max()) + margin + 1),
                max(0, int(xs.min()) - margin):min(w, int(xs.max()) + margin + 1)] = 0
    return out


def toy_object_removal_set(num: int = 64, size: int = 32, out_size: int = 64, dilate: int = 1,
                           alpha_thr: float = 0.05, seed: int = 0
                           ) -> Tuple[List[np.ndarray], Tensor, Tensor]:
    """Toy digit crops (as ``configs/_base_/datasets/toy_cls.py``, validation glyphs) with the
    digit's exact object mask: ``(images BGR uint8 out_size², labels (N,), keep masks (N, H, W))``.

    The mask removes every pixel the digit paints (glyph alpha > ``alpha_thr``; the painter blends
    ``min(1, 1.6·alpha)`` of the digit colour), upsampled with the image and dilated by ``dilate``
    px at ``out_size`` to cover the bilinear resize, so no digit colour is left next to the hole.
    """
    import cv2

    from mmmask.datasets.toy.scenes import digit_label, digit_pool, glyph, render_scene
    rng = np.random.default_rng(seed)
    pool = digit_pool('val')
    images, labels, masks = [], [], []
    kernel = np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8)
    while len(images) < num:
        gi = int(rng.choice(pool))
        s = int(rng.integers(size * 5 // 8, size * 7 // 8 + 1))
        top, left = (int(rng.integers(0, size - s + 1)) for _ in range(2))
        scene = render_scene(rng, 'val', size, digits=[(gi, s, top, left)])
        obj = np.zeros((size, size), np.uint8)
        obj[top:top + s, left:left + s] = glyph(gi, s) > alpha_thr
        obj = cv2.resize(obj, (out_size, out_size), interpolation=cv2.INTER_NEAREST)
        if dilate:
            obj = cv2.dilate(obj, kernel)
        images.append(cv2.resize(scene.image, (out_size, out_size),
                                 interpolation=cv2.INTER_LINEAR))
        masks.append(torch.from_numpy(1 - obj.astype(np.float32)))
        labels.append(digit_label(gi))
    return images, torch.tensor(labels), torch.stack(masks)


# ------------------------------------------------------------------ classifier and pipeline step


@MODELS.register_module()
class LayerMaskedImageClassifier(ImageClassifier):
    """An mmpretrain ``ImageClassifier`` whose ResNet runs with layer masking.

    The mask of each image (``(H, W)`` on the preprocessed input grid, 1 = keep) comes from its
    data sample's ``layer_mask`` field (e.g. :class:`RandomPatchRemoval` with
    ``PackInputs(algorithm_keys=['layer_mask'])``) or from ``forward(..., mask=...)``; images
    without one are fully kept. The backbone (mmpretrain ``ResNet``/V1c/V1d or
    ``mmmask.LayerMaskedResNet``) and a ``GlobalAveragePooling`` neck are converted by
    :func:`to_layer_masked`, so checkpoints of the plain classifier load unchanged. Config files
    using it need ``custom_imports = dict(imports=['mmmask.evaluation'])``.

    Args:
        mask_mode: ``'fill'`` (the paper), ``'zero'`` or ``'pconv'``.
    """

    def __init__(self, *args, mask_mode: str = 'fill', **kwargs) -> None:
        super().__init__(*args, **kwargs)
        to_layer_masked(self, mask_mode)
        self.mask_mode = mask_mode

    def _sample_masks(self, inputs: Tensor, data_samples) -> Optional[Tensor]:
        if not data_samples:
            return None
        found = [s.get('layer_mask', None) if hasattr(s, 'get') else None for s in data_samples]
        if all(m is None for m in found):
            return None
        masks = inputs.new_ones(inputs.shape[0], *inputs.shape[-2:])
        for i, m in enumerate(found):
            if m is not None:
                m = torch.as_tensor(np.asarray(m) if not torch.is_tensor(m) else m)
                masks[i] = m.reshape(inputs.shape[-2:]).to(masks)
        return masks

    def forward(self, inputs: Tensor, data_samples=None, mode: str = 'tensor',
                mask: Optional[Tensor] = None):
        mask = self._sample_masks(inputs, data_samples) if mask is None else mask
        if mask is None:
            return super().forward(inputs, data_samples, mode)
        with use_layer_mask(self, mask, self.mask_mode):
            return super().forward(inputs, data_samples, mode)


@TRANSFORMS.register_module()
class RandomPatchRemoval(BaseTransform):
    """Remove a random ``ratio`` of the ``patch × patch`` squares of the (resized) image.

    ``fill=None``: the image is unchanged and the keep mask (``(H, W)`` float32, 1 = keep) is
    stored as ``results['layer_mask']`` for :class:`LayerMaskedImageClassifier` (pack it with
    ``PackInputs(algorithm_keys=['layer_mask'])``); ``fill=(b, g, r)``: the removed squares are
    painted (grey = the preprocessor mean, black = 0) for a plain classifier. Deterministic per
    image when ``seed`` is set (the same squares for every strategy).
    """

    def __init__(self, ratio: float = 0.5, patch: int = 16,
                 fill: Optional[Sequence[float]] = None, seed: Optional[int] = 0) -> None:
        self.ratio, self.patch, self.fill, self.seed = ratio, patch, fill, seed

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        seg = patch_segments(h, w, self.patch).numpy()
        num = int(seg.max()) + 1
        if self.seed is None:
            rng = np.random.default_rng()
        else:
            key = str(results.get('img_path', results.get('sample_idx', '')))
            digest = sum(ord(c) * (i + 1) for i, c in enumerate(key))
            rng = np.random.default_rng([self.seed, digest])
        drop = rng.permutation(num)[:int(round(self.ratio * num))]
        keep = (~np.isin(seg, drop)).astype(np.float32)
        if self.fill is None:
            results['layer_mask'] = keep
        else:
            fill = np.asarray(self.fill, dtype=np.float32).reshape(1, 1, -1)
            out = img.astype(np.float32) * keep[..., None] + fill * (1 - keep[..., None])
            results['img'] = out.round().clip(0, 255).astype(img.dtype)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(ratio={self.ratio}, patch={self.patch}, '
                f'fill={self.fill}, seed={self.seed})')
