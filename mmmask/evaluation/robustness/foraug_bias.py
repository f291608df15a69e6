"""ForAug bias metrics (Nauen et al., arXiv 2503.09399, Sec. "model behaviour and biases").

ForAug's control over background, position and size of the object turns into four measurements of a
trained classifier on recombined evaluation data (``ForNetDataset`` layout, val split):

* **background robustness** = acc(fg on *any* background, ``'all'``) / acc(fg on a background of its
  own class, ``'same'``): 1 means the background's class does not matter.
* **foreground focus** = mean attribution on foreground pixels / mean attribution over the image
  (= share of attribution inside the object / share of pixels inside it); > 1 means the model
  looks at the object. Attributions: integrated gradients (``'ig'``), Grad-CAM (``'gradcam'``) or
  plain input gradients (``'grad'``), absolute values summed over channels.
* **centre bias**: the object is shrunk into each cell of a 3x3 grid (``fg_in_nonant`` 0..8);
  ``1 - (mean(acc corners) + mean(acc edges)) / (2 acc centre)``; 0 = no preference for the centre.
* **size bias**: accuracy as the object is scaled by ``size_fact`` (relative to ``size_fact = 1``);
  scalar summary ``1 - mean_{f != 1} acc(f) / acc(1)`` (ours).

The official repository ships the recombination (``fornet.py``: ``fg_in_nonant``, ``size_fact``,
``background_combination``) but not the metric code; the formulas above are our reading of the paper
(see ``configs/foraug/README.md``). Every accuracy behind them is returned too.
"""
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

__all__ = [
    'background_robustness', 'foreground_focus', 'center_bias', 'size_bias', 'attribution_map',
    'integrated_gradients', 'grad_cam', 'ForAugBiasEvaluator', 'CORNER_NONANTS', 'EDGE_NONANTS'
]

CORNER_NONANTS = (0, 2, 6, 8)
EDGE_NONANTS = (1, 3, 5, 7)
CENTRE_NONANT = 4


def background_robustness(acc_all: float, acc_same: float) -> float:
    """acc(any background) / acc(same-class background)."""
    return float(acc_all / acc_same) if acc_same > 0 else float('nan')


def foreground_focus(attribution: Tensor, fg_mask: Tensor, eps: float = 1e-12) -> Tensor:
    """Per image ``(sum_fg a / sum a) / (|fg| / N)`` for attribution ``a`` [B, H, W] (made
    non-negative by ``abs``) and a foreground mask [B, H, W] in [0, 1] (soft masks weight pixels).
    Images with an empty mask or a zero attribution give NaN."""
    a = attribution.abs().flatten(1).double()
    m = fg_mask.flatten(1).double().to(a.device)
    share_attr = (a * m).sum(1) / a.sum(1).clamp_min(eps)
    share_area = m.sum(1) / m.shape[1]
    out = share_attr / share_area.clamp_min(eps)
    bad = (m.sum(1) <= 0) | (a.sum(1) <= eps)
    return out.masked_fill(bad, float('nan')).float()


def center_bias(nonant_acc: Sequence[float]) -> float:
    """``1 - (mean corners + mean edges) / (2 · centre)`` of the 9 accuracies (row-major 3x3)."""
    acc = np.asarray(nonant_acc, dtype=np.float64).reshape(9)
    if acc[CENTRE_NONANT] <= 0:
        return float('nan')
    return float(1 - (acc[list(CORNER_NONANTS)].mean() + acc[list(EDGE_NONANTS)].mean())
                 / (2 * acc[CENTRE_NONANT]))


def size_bias(size_facts: Sequence[float], accs: Sequence[float]) -> Dict[str, object]:
    """Accuracies relative to the one at ``size_fact == 1`` and the summary
    ``1 - mean_{f != 1} rel(f)`` (0 = size does not matter)."""
    facts = [float(f) for f in size_facts]
    if 1.0 not in facts:
        raise ValueError('size_bias needs size_fact 1.0 among the size factors (the reference)')
    ref = accs[facts.index(1.0)]
    rel = {f: (float(a / ref) if ref > 0 else float('nan')) for f, a in zip(facts, accs)}
    others = [v for f, v in rel.items() if f != 1.0]
    return dict(relative=rel, size_bias=float(1 - np.mean(others)) if others else 0.0)


# ----------------------------------------------------------------------------------- attributions
def integrated_gradients(model: Callable[[Tensor], Tensor], x: Tensor, target: Tensor,
                         baseline: Optional[Tensor] = None, steps: int = 16) -> Tensor:
    """Integrated gradients (Sundararajan et al. 2017), Riemann midpoint rule, ``|·|`` summed over
    channels → [B, H, W]. ``baseline`` defaults to zeros (the mean image after normalisation)."""
    baseline = torch.zeros_like(x) if baseline is None else baseline
    total = torch.zeros_like(x)
    for k in range(steps):
        xi = (baseline + (k + 0.5) / steps * (x - baseline)).detach().requires_grad_(True)
        out = model(xi)
        score = out.gather(1, target.view(-1, 1)).sum()
        (grad, ) = torch.autograd.grad(score, xi)
        total += grad
    return ((x - baseline) * total / steps).abs().sum(1).detach()


def grad_cam(model: Callable[[Tensor], Tensor], x: Tensor, target: Tensor,
             layer: nn.Module) -> Tensor:
    """Grad-CAM (Selvaraju et al. 2017) at ``layer`` (output [B, C, h, w], or tokens [B, N, C]
    with a square patch grid after an optional CLS token), ReLU, upsampled to the input size."""
    store = {}

    def hook(_m, _i, out):
        out = out[0] if isinstance(out, (tuple, list)) else out
        out.retain_grad()
        store['feat'] = out

    handle = layer.register_forward_hook(hook)
    try:
        out = model(x.detach().requires_grad_(True))
        score = out.gather(1, target.view(-1, 1)).sum()
        score.backward()
    finally:
        handle.remove()
    feat, grad = store['feat'], store['feat'].grad
    if feat.dim() == 3:  # tokens
        n = feat.shape[1]
        side = int(math.isqrt(n))
        if side * side != n:
            feat, grad, side = feat[:, 1:], grad[:, 1:], int(math.isqrt(n - 1))
        feat = feat.transpose(1, 2).reshape(feat.shape[0], -1, side, side)
        grad = grad.transpose(1, 2).reshape(grad.shape[0], -1, side, side)
    weights = grad.mean((2, 3), keepdim=True)
    cam = torch.relu((weights * feat).sum(1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=x.shape[-2:], mode='bilinear',
                                          align_corners=False)
    return cam[:, 0].detach()


def attribution_map(model: Callable[[Tensor], Tensor], x: Tensor, target: Tensor,
                    method: str = 'ig', layer: Optional[nn.Module] = None,
                    steps: int = 16) -> Tensor:
    """[B, H, W] non-negative attribution of ``target`` by ``'ig'``, ``'grad'`` or ``'gradcam'``."""
    if method == 'ig':
        return integrated_gradients(model, x, target, steps=steps)
    if method == 'grad':
        xi = x.detach().requires_grad_(True)
        score = model(xi).gather(1, target.view(-1, 1)).sum()
        (grad, ) = torch.autograd.grad(score, xi)
        return grad.abs().sum(1).detach()
    if method == 'gradcam':
        if layer is None:
            raise ValueError("attribution 'gradcam' needs a layer (e.g. the backbone's last stage)")
        return grad_cam(model, x, target, layer)
    raise ValueError(f"attribution method {method!r}: use 'ig', 'grad' or 'gradcam'")


# ------------------------------------------------------------------------------------- evaluator
class ForAugBiasEvaluator:
    """Run the four ForAug bias measurements of one classifier on a ForNet-layout dataset.

    ``dataset``: an ``mmmask.ForNetDataset`` (no pipeline needed; its val split); ``model``:
    ``x [B, 3, S, S] float → logits [B, K]`` on images already normalised by ``normalize`` (a
    callable on ``[B, 3, S, S]`` float RGB in 0..255); ``input_size`` S: every composite (built at
    the background's resolution) is resized to S x S (bilinear; the mask alike). Recombination uses
    the official evaluation settings (``train=False``: centre crop of too-large objects), each
    condition with a fresh ``RandomState(seed)``. ``max_samples`` caps the number of foregrounds
    (evenly spread). ``canvas_size``: resize backgrounds to this square size *before* pasting
    (default: recombine at the background's own resolution, as the official code; useful when
    backgrounds are much smaller than the model input, e.g. 32-px toy crops, whose nonants would
    be ~10 px).
    """

    def __init__(self, dataset, model: Callable[[Tensor], Tensor],
                 normalize: Callable[[Tensor], Tensor], input_size: int = 224, seed: int = 0,
                 max_samples: Optional[int] = None, batch_size: int = 32,
                 recombine_kwargs: Optional[dict] = None, device: str = 'cpu',
                 canvas_size: Optional[int] = None) -> None:
        self.ds = dataset
        self.model = model
        self.normalize = normalize
        self.input_size = input_size
        self.seed = seed
        self.batch_size = batch_size
        self.device = device
        self.canvas_size = canvas_size
        self.kwargs = dict(fg_scale_jitter=0.3, fg_size_mode='range', fg_bates_n=1,
                           mask_smoothing_sigma=4.0, rel_jut_out=0.0, train=False)
        self.kwargs.update(recombine_kwargs or {})
        n = len(dataset)
        self.indices = list(range(n)) if not max_samples or max_samples >= n else \
            [int(i) for i in np.linspace(0, n - 1, max_samples).round()]
        self._fg_cache: Dict[int, Tuple[Image.Image, dict]] = {}

    # -- data
    def _fg(self, idx: int) -> Tuple[Image.Image, dict]:
        if idx not in self._fg_cache:
            from mmengine.dataset import BaseDataset
            info = BaseDataset.get_data_info(self.ds, idx)  # no background / original draw
            fg = Image.open(info['fg_path']).convert('RGBA')
            self._fg_cache[idx] = (fg, info)
        return self._fg_cache[idx]

    def composites(self, background: str = 'original', **overrides
                   ) -> Tuple[Tensor, Tensor, Tensor, List[np.ndarray]]:
        """``(images [N,3,S,S] float RGB 0..255, masks [N,S,S], labels [N], raw RGB composites)``
        with the backgrounds of ``background`` (``'original'``/``'same'``/``'all'``)."""
        from mmmask.datasets.transforms.foraug import recombine
        rng = np.random.RandomState(self.seed)
        saved_mode, saved_rng = self.ds.background_combination, self.ds.rng
        self.ds.background_combination, self.ds.rng = background, rng
        imgs, masks, labels, raw = [], [], [], []
        kwargs = {**self.kwargs, **overrides}
        try:
            for idx in self.indices:
                fg, info = self._fg(idx)
                bg_key = self.ds.choose_background(info)
                bg = Image.open(f'{self.ds.bg_dir}/{bg_key}').convert('RGB')
                if self.canvas_size:
                    bg = bg.resize((self.canvas_size, self.canvas_size), Image.BILINEAR)
                out = recombine(fg, bg, info['fg_ratio'], self.ds.fg_bg_ratios.get(
                    bg_key, info['fg_ratio']), rng=rng, return_mask=True, **kwargs)
                rgb = np.asarray(out.image)
                raw.append(rgb)
                s = self.input_size
                imgs.append(cv2.resize(rgb, (s, s), interpolation=cv2.INTER_LINEAR))
                masks.append(cv2.resize(out.mask, (s, s), interpolation=cv2.INTER_LINEAR))
                labels.append(int(info['gt_label']))
        finally:
            self.ds.background_combination, self.ds.rng = saved_mode, saved_rng
        x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float()
        return x, torch.from_numpy(np.stack(masks)), torch.tensor(labels), raw

    # -- model
    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        preds = []
        for i in range(0, len(x), self.batch_size):
            xb = self.normalize(x[i:i + self.batch_size].to(self.device))
            preds.append(self.model(xb).argmax(1).cpu())
        return torch.cat(preds)

    def accuracy(self, background: str = 'original', **overrides) -> float:
        x, _, y, _ = self.composites(background, **overrides)
        return float((self.predict(x) == y).float().mean())

    # -- metrics
    def background_robustness(self) -> Dict[str, float]:
        acc = {b: self.accuracy(b) for b in ('original', 'same', 'all')}
        return dict(acc_original=acc['original'], acc_same=acc['same'], acc_all=acc['all'],
                    background_robustness=background_robustness(acc['all'], acc['same']))

    def center_bias(self, background: str = 'original') -> Dict[str, object]:
        accs = [self.accuracy(background, fg_in_nonant=k) for k in range(9)]
        return dict(nonant_acc=accs, center_bias=center_bias(accs))

    def size_bias(self, size_facts: Sequence[float] = (0.5, 0.75, 1.0, 1.25, 1.5),
                  background: str = 'original') -> Dict[str, object]:
        accs = [self.accuracy(background, size_fact=float(f)) for f in size_facts]
        out = size_bias(size_facts, accs)
        out['acc'] = {float(f): a for f, a in zip(size_facts, accs)}
        return out

    def foreground_focus(self, method: str = 'ig', layer: Optional[nn.Module] = None,
                         background: str = 'original', steps: int = 16) -> Dict[str, float]:
        """Mean foreground focus of the attribution of the *true* class."""
        x, m, y, _ = self.composites(background)
        values = []
        for i in range(0, len(x), self.batch_size):
            xb = self.normalize(x[i:i + self.batch_size].to(self.device))
            with torch.enable_grad():
                a = attribution_map(self.model, xb, y[i:i + self.batch_size].to(self.device),
                                    method, layer, steps)
            values.append(foreground_focus(a.cpu(), m[i:i + self.batch_size]))
        v = torch.cat(values)
        v = v[~torch.isnan(v)]
        return dict(foreground_focus=float(v.mean()) if len(v) else float('nan'),
                    num_images=int(len(v)), method=method)

    def evaluate(self, metrics: Sequence[str] = ('background', 'focus', 'center', 'size'),
                 attribution: str = 'ig', layer: Optional[nn.Module] = None,
                 size_facts: Sequence[float] = (0.5, 0.75, 1.0, 1.25, 1.5)) -> Dict[str, object]:
        out: Dict[str, object] = dict(num_samples=len(self.indices))
        if 'background' in metrics:
            out.update(self.background_robustness())
        if 'focus' in metrics:
            out.update(self.foreground_focus(attribution, layer))
        if 'center' in metrics:
            out.update(self.center_bias())
        if 'size' in metrics:
            sb = self.size_bias(size_facts)
            out.update(size_bias=sb['size_bias'], size_acc=sb['acc'],
                       size_relative=sb['relative'])
        return out
