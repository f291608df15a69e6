"""DiSRT: Distorted Spatial Relationship Testbench (arXiv 2506.00718, "From Local Cues to Global
Percepts"; predecessor DiST, arXiv 2310.07555).

The testbench asks whether a model's features are sensitive to the *global* spatial arrangement
of an image when its *local* texture is kept. Each trial is an **oddity (odd-one-out) triplet**:
the original image and two versions of it whose global spatial relations are destroyed while
their local content is kept; the model "answers" by feature distance, picking as odd the image
farthest from the other two (for three items: the one outside the closest pair). Chance is 1/3.
A model that only sees local texture (a bag of local features) cannot tell the three apart.

Neither paper released its code or images (leelabcnbc/DiST has only a README; DiST used a
texture-synthesis program to make its distorted images). What is implemented here, and what is
our assumption:

* the distortion is a **patch rearrangement** at a chosen grid (:func:`shuffle_patches`,
  transform ``mmmask.PatchShuffle``): ``mode='shuffle'`` moves every patch (a random derangement
  of the grid cells), ``mode='swap'`` exchanges ``num_swaps`` random pairs (graded severity).
  Pixels inside a patch are untouched, so the local texture is exactly kept; the two distorted
  views of a triplet use different permutations;
* ``OddityTriplets`` (``DATASETS``) turns any classification dataset into triplets
  ``{original, distortion 1, distortion 2}`` with the odd one (the original) at a random,
  seeded position (``mode='disrt'``), or ``{A, A, B}`` with B another image (``'identical'``:
  a sanity check that any non-constant model solves);
* the answer rule: distance (``cosine`` by default, or ``euclidean``) between the three feature
  vectors, the odd one has the largest summed distance to the other two. Exact ties (a model
  whose features are invariant to the rearrangement) earn ``1/m`` for ``m`` tied candidates:
  the expected score of guessing, so such a model scores chance (33.3 %) exactly;
* the score is the percentage of triplets answered correctly (``OddityAccuracy``, ``METRICS``,
  or :func:`oddity_accuracy` over ``(N, 3, D)`` features).

Texture-only controls (``MODELS``): ``PatchLocal`` runs any backbone on each patch on its own
(the model under test with its own weights, blind to the arrangement of the patches), and
``BagOfLocalFeatures`` is a small BagNet-like network to train from scratch. With global average
pooling both give features invariant to any rearrangement of the patches at their patch grid.
"""
import copy
import zlib
from collections import defaultdict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.utils.data import Dataset

from ...registry import DATASETS, METRICS, MODELS, TRANSFORMS

__all__ = ['patch_permutation', 'shuffle_patches', 'PatchShuffle', 'OddityTriplets',
           'oddity_distances', 'oddity_scores', 'oddity_credit', 'oddity_accuracy',
           'OddityAccuracy', 'BagOfLocalFeatures', 'PatchLocal', 'CHANCE']

#: chance level of the three-image oddity task, in percent
CHANCE = 100. / 3


def _grid(grid: Union[int, Sequence[int]]) -> Tuple[int, int]:
    gh, gw = (grid, grid) if isinstance(grid, int) else tuple(grid)
    if gh < 1 or gw < 1 or gh * gw < 2:
        raise ValueError(f'a patch grid needs at least 2 cells, got {grid}')
    return int(gh), int(gw)


def patch_permutation(num_patches: int, rng: np.random.Generator, mode: str = 'shuffle',
                      num_swaps: int = 1) -> np.ndarray:
    """A permutation ``perm`` of the grid cells: cell ``i`` of the output shows cell ``perm[i]``.

    ``'shuffle'``: a uniformly random derangement (no patch stays in place); ``'swap'``:
    ``num_swaps`` exchanges of distinct random pairs (at most ``num_patches // 2``).
    """
    if num_patches < 2:
        raise ValueError('a patch rearrangement needs at least 2 patches')
    if mode == 'shuffle':
        while True:  # rejection sampling: P(derangement) ~ 1/e
            perm = rng.permutation(num_patches)
            if not (perm == np.arange(num_patches)).any():
                return perm
    if mode == 'swap':
        if not 1 <= num_swaps <= num_patches // 2:
            raise ValueError(f'num_swaps must be in [1, {num_patches // 2}] for {num_patches} '
                             f'patches, got {num_swaps}')
        perm = np.arange(num_patches)
        cells = rng.permutation(num_patches)[:2 * num_swaps].reshape(num_swaps, 2)
        perm[cells[:, 0]], perm[cells[:, 1]] = cells[:, 1], cells[:, 0]
        return perm
    raise ValueError(f"mode must be 'shuffle' or 'swap', got {mode!r}")


def shuffle_patches(img: Union[np.ndarray, Tensor], grid: Union[int, Sequence[int]],
                    perm: Sequence[int], channel_last: Optional[bool] = None
                    ) -> Union[np.ndarray, Tensor]:
    """Rearrange the ``grid`` patches of ``img`` by ``perm`` (see :func:`patch_permutation`).

    ``img``: ``(H, W)`` / ``(H, W, C)`` numpy (channel-last, as loaded by mmcv) or ``(..., C, H,
    W)`` torch (channel-first); ``channel_last`` overrides that default. When ``H`` or ``W`` is
    not a multiple of the grid, the bottom/right remainder rows/columns stay in place.
    """
    gh, gw = _grid(grid)
    perm = np.asarray(perm)
    if sorted(perm.tolist()) != list(range(gh * gw)):
        raise ValueError(f'perm must be a permutation of {gh * gw} cells')
    if channel_last is None:
        channel_last = isinstance(img, np.ndarray)
    h_axis = 0 if channel_last else img.ndim - 2
    h, w = img.shape[h_axis], img.shape[h_axis + 1]
    ph, pw = h // gh, w // gw
    if ph == 0 or pw == 0:
        raise ValueError(f'image {h}x{w} is smaller than the {gh}x{gw} patch grid')
    out = img.copy() if isinstance(img, np.ndarray) else img.clone()

    def cell(t, i):
        r, c = divmod(int(i), gw)
        index = [slice(None)] * img.ndim
        index[h_axis] = slice(r * ph, (r + 1) * ph)
        index[h_axis + 1] = slice(c * pw, (c + 1) * pw)
        return tuple(index)

    for dst, src in enumerate(perm):
        out[cell(out, dst)] = img[cell(img, src)]
    return out


def _seed(*parts: Any) -> int:
    """A stable 32-bit seed from ints/strings (``hash`` of str is salted per process)."""
    return zlib.crc32(repr(parts).encode())


@TRANSFORMS.register_module()
class PatchShuffle(BaseTransform):
    """Destroy global spatial relations, keep local texture: rearrange the ``grid`` patches of
    ``results['img']`` (DiSRT-style distortion; see the module docstring).

    Randomness: ``results['disrt_seed']`` when present (``OddityTriplets`` sets it per view),
    else ``seed`` combined with ``results['sample_idx']`` (reproducible per image), else numpy's
    global generator. The permutation is stored in ``results['patch_perm']``.

    Args:
        grid: patches per side (int) or ``(rows, cols)``.
        mode: ``'shuffle'`` (every patch moves) or ``'swap'`` (``num_swaps`` pair exchanges).
        prob: probability of distorting an image.
    """

    def __init__(self, grid: Union[int, Sequence[int]] = 4, mode: str = 'shuffle',
                 num_swaps: int = 1, prob: float = 1., seed: Optional[int] = None) -> None:
        self.grid = _grid(grid)
        if mode not in ('shuffle', 'swap'):
            raise ValueError(f"mode must be 'shuffle' or 'swap', got {mode!r}")
        self.mode, self.num_swaps, self.prob, self.seed = mode, int(num_swaps), float(prob), seed

    def transform(self, results: dict) -> dict:
        if 'disrt_seed' in results:
            rng = np.random.default_rng(results['disrt_seed'])
        elif self.seed is not None:
            rng = np.random.default_rng(_seed(self.seed, results.get('sample_idx', 0)))
        else:
            rng = np.random.default_rng(np.random.randint(2**31))
        if rng.random() >= self.prob:
            results['patch_perm'] = None
            return results
        perm = patch_permutation(self.grid[0] * self.grid[1], rng, self.mode, self.num_swaps)
        results['img'] = shuffle_patches(results['img'], self.grid, perm, channel_last=True)
        results['patch_perm'] = perm
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(grid={self.grid}, mode={self.mode}, '
                f'num_swaps={self.num_swaps}, prob={self.prob}, seed={self.seed})')


def _build_pipeline(cfg: Union[None, dict, Sequence, Any]):
    from mmengine.dataset import Compose
    if cfg is None:
        return None
    if isinstance(cfg, dict):
        cfg = [cfg]
    if isinstance(cfg, (list, tuple)):
        return Compose([TRANSFORMS.build(t) if isinstance(t, dict) else t for t in cfg])
    return cfg  # a callable


@DATASETS.register_module()
class OddityTriplets(Dataset):
    """Oddity triplets over any classification dataset, flattened to ``3 * num_triplets``
    samples (triplet ``t`` is samples ``3t, 3t+1, 3t+2``), each tagged in its data sample's
    metainfo with ``triplet_id``, ``triplet_view`` and ``odd_view``.

    Args:
        dataset: the source dataset (config or object). Its own pipeline must stop before
            packing (load, resize, crop: the distortion acts on the final image).
        pipeline: applied to each view after the distortion (e.g. ``[dict(type='PackInputs')]``).
        distortion: the global-structure distortion (transform config(s) or a callable),
            default ``dict(type='mmmask.PatchShuffle', grid=4)``.
        mode: ``'disrt'``: ``{original, distortion 1, distortion 2}``, the original is odd;
            ``'identical'``: ``{A, A, B}`` (B: the image half the dataset away), B is odd.
        num_triplets: use this many source images spread evenly over the dataset (None: all).
        seed: seeds the odd one's position and the distortions (per triplet and view).
    """

    def __init__(self, dataset: Union[dict, Dataset], pipeline: Union[None, Sequence, Any] = None,
                 distortion: Union[None, dict, Sequence, Any] = None, mode: str = 'disrt',
                 num_triplets: Optional[int] = None, seed: int = 0,
                 lazy_init: bool = False) -> None:
        if mode not in ('disrt', 'identical'):
            raise ValueError(f"OddityTriplets mode must be 'disrt' or 'identical', got {mode!r}")
        self._dataset_cfg = copy.deepcopy(dataset) if isinstance(dataset, dict) else None
        self.dataset = None if isinstance(dataset, dict) else dataset
        self.pipeline = _build_pipeline(pipeline)
        self.distortion = _build_pipeline(
            distortion if distortion is not None else dict(type='mmmask.PatchShuffle', grid=4))
        self.mode, self.num_triplets, self.seed = mode, num_triplets, int(seed)
        self.sources: Optional[np.ndarray] = None
        if not lazy_init:
            self.full_init()

    def full_init(self) -> None:
        if self.sources is not None:
            return
        if self.dataset is None:
            self.dataset = DATASETS.build(self._dataset_cfg)
        n = len(self.dataset)
        if n < 2:
            raise ValueError('OddityTriplets needs a source dataset with at least 2 images')
        num = n if self.num_triplets is None else min(int(self.num_triplets), n)
        self.sources = np.unique(np.linspace(0, n - 1, num).round().astype(int))

    @property
    def metainfo(self) -> dict:
        self.full_init()
        meta = copy.deepcopy(getattr(self.dataset, 'metainfo', {}) or {})
        meta.update(oddity_mode=self.mode, num_triplets=len(self.sources))
        return meta

    def __len__(self) -> int:
        self.full_init()
        return 3 * len(self.sources)

    def odd_view(self, triplet: int) -> int:
        """Position (0-2) of the odd image in ``triplet`` (seeded, uniform)."""
        return int(np.random.default_rng(_seed(self.seed, 'odd', triplet)).integers(3))

    def _source(self, index: int) -> dict:
        results = self.dataset[int(index)]
        if not isinstance(results, dict) or 'img' not in results:
            raise TypeError('OddityTriplets: the source dataset must yield result dicts with '
                            "'img' (end its pipeline before PackInputs and give the packing "
                            'transforms as OddityTriplets(pipeline=...))')
        return results

    def get_view(self, triplet: int, view: int) -> dict:
        """The results dict of one view before ``pipeline`` (for visualisation)."""
        self.full_init()
        odd = self.odd_view(triplet)
        src = int(self.sources[triplet])
        if self.mode == 'disrt':
            results = copy.deepcopy(self._source(src))
            if view != odd:
                results['disrt_seed'] = _seed(self.seed, 'view', triplet, view)
                results = self.distortion(results)
                results.pop('disrt_seed', None)
        else:
            if view == odd:
                src = (src + len(self.dataset) // 2) % len(self.dataset)
            results = copy.deepcopy(self._source(src))
        results.update(triplet_id=triplet, triplet_view=view, odd_view=odd)
        return results

    def __getitem__(self, index: int) -> Any:
        triplet, view = divmod(int(index), 3)
        if triplet >= len(self.sources):
            raise IndexError(index)
        results = self.get_view(triplet, view)
        meta = dict(triplet_id=triplet, triplet_view=view, odd_view=results['odd_view'])
        out = self.pipeline(results) if self.pipeline is not None else results
        samples = out.get('data_samples') if isinstance(out, dict) else None
        if samples is not None and hasattr(samples, 'set_metainfo'):
            samples.set_metainfo(meta)
        return out


# ----------------------------------------------------------------------------- the answer rule
def oddity_distances(feats: Tensor, distance: str = 'cosine') -> Tensor:
    """``(N, 3, D)`` features -> ``(N, 3)`` distances ``[d(1,2), d(0,2), d(0,1)]`` (the pair
    without item ``i`` at index ``i``)."""
    if feats.dim() != 3 or feats.shape[1] != 3:
        raise ValueError(f'oddity features must be (N, 3, D), got {tuple(feats.shape)}')
    feats = feats.double()
    pairs = ((1, 2), (0, 2), (0, 1))
    if distance == 'cosine':
        unit = torch.nn.functional.normalize(feats, dim=-1)
        return torch.stack([1 - (unit[:, a] * unit[:, b]).sum(-1) for a, b in pairs], 1)
    if distance == 'euclidean':
        return torch.stack([(feats[:, a] - feats[:, b]).norm(dim=-1) for a, b in pairs], 1)
    raise ValueError(f"distance must be 'cosine' or 'euclidean', got {distance!r}")


def oddity_scores(feats: Tensor, distance: str = 'cosine') -> Tensor:
    """``(N, 3)`` summed distance of each image to the other two (the odd one: the largest)."""
    d = oddity_distances(feats, distance)  # d[:, i]: the pair that excludes i
    total = d.sum(1, keepdim=True)
    return total - d


def _tolerance(feats: Tensor, distance: str, tie_tol: float) -> Tensor:
    if distance == 'cosine':  # bounded in [0, 2]
        return torch.full(feats.shape[:1], tie_tol, dtype=torch.float64)
    return tie_tol * feats.double().norm(dim=-1).mean(1) + 1e-12


def oddity_credit(feats: Tensor, odd_index: Union[Tensor, Sequence[int]],
                  distance: str = 'cosine', tie_tol: float = 1e-6) -> Tensor:
    """Per-triplet credit in [0, 1]: 1 when the true odd one has the uniquely largest summed
    distance; ``1/m`` when it ties with ``m - 1`` others (within ``tie_tol``, absolute for
    cosine, relative to the mean feature norm for euclidean); 0 otherwise."""
    feats = torch.as_tensor(feats)
    odd = torch.as_tensor(odd_index, dtype=torch.long).reshape(-1)
    scores = oddity_scores(feats, distance)
    tol = _tolerance(feats, distance, tie_tol).unsqueeze(1)
    candidates = scores >= scores.max(1, keepdim=True).values - tol
    hit = candidates.gather(1, odd.unsqueeze(1)).squeeze(1).double()
    return hit / candidates.sum(1).double()


def oddity_accuracy(feats: Tensor, odd_index: Union[Tensor, Sequence[int]],
                    distance: str = 'cosine', tie_tol: float = 1e-6) -> float:
    """DiSRT score in percent (chance: 33.3) over ``(N, 3, D)`` triplet features."""
    return float(oddity_credit(feats, odd_index, distance, tie_tol).mean() * 100)


@METRICS.register_module()
class OddityAccuracy(BaseMetric):
    """DiSRT oddity accuracy (%) over the samples of an ``OddityTriplets`` dataset.

    Reads one feature vector per data sample (``feature_key``: ``'pred_score'`` for an
    mmpretrain classifier's softmax output, or any tensor field a model puts there) and the
    ``triplet_id`` / ``triplet_view`` / ``odd_view`` metainfo. Incomplete triplets are skipped.
    Results: ``{prefix}/accuracy``, ``{prefix}/num_triplets`` and ``{prefix}/chance``.
    """
    default_prefix = 'disrt'

    def __init__(self, feature_key: str = 'pred_score', distance: str = 'cosine',
                 tie_tol: float = 1e-6, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        oddity_distances(torch.zeros(1, 3, 1), distance)  # validates `distance`
        self.feature_key, self.distance, self.tie_tol = feature_key, distance, tie_tol

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        for sample in data_samples:
            get = sample.get if isinstance(sample, dict) else (
                lambda k, s=sample: getattr(s, k, None))
            meta = sample.get('metainfo', sample) if isinstance(sample, dict) else sample
            feat = get(self.feature_key)
            keys = ('triplet_id', 'triplet_view', 'odd_view')
            values = [meta.get(k) if isinstance(meta, dict) else getattr(meta, k, None)
                      for k in keys]
            if feat is None or any(v is None for v in values):
                raise KeyError(f'OddityAccuracy needs {self.feature_key!r} and the metainfo '
                               f'{keys} in every data sample (evaluate an OddityTriplets '
                               'dataset; set feature_key to a field the model fills)')
            self.results.append(dict(zip(keys, map(int, values)),
                                     feat=torch.as_tensor(feat).detach().float().reshape(-1)
                                     .cpu()))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        triplets: Dict[int, Dict[int, dict]] = defaultdict(dict)
        for r in results:
            triplets[r['triplet_id']][r['triplet_view']] = r
        complete = [t for t in sorted(triplets) if len(triplets[t]) == 3]
        if not complete:
            raise ValueError('OddityAccuracy: no complete triplet was evaluated')
        feats = torch.stack([torch.stack([triplets[t][v]['feat'] for v in range(3)])
                             for t in complete])
        odd = [triplets[t][0]['odd_view'] for t in complete]
        return dict(accuracy=oddity_accuracy(feats, odd, self.distance, self.tie_tol),
                    num_triplets=float(len(complete)), chance=CHANCE)


# ----------------------------------------------------------------------- texture-only control
@MODELS.register_module()
class BagOfLocalFeatures(BaseModule):
    """Texture-only control model for the testbench (BagNet-like). The image is cut into
    non-overlapping ``patch_size`` patches and each patch is encoded **on its own** by a small
    CNN (3x3 convs padded inside the patch, ``widths`` channels, stride 2 after the first,
    average-pooled over the patch), then ``depth`` 1x1 conv blocks. No output position sees more
    than one patch, so after global average pooling the features are invariant to any
    rearrangement of the patches at the ``patch_size`` grid. Returns a one-tuple of the
    ``(N, C, H/p, W/p)`` map, like mmpretrain backbones (``C = widths[-1]``)."""

    def __init__(self, patch_size: int = 16, widths: Sequence[int] = (32, 64, 64),
                 depth: int = 1, in_channels: int = 3, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.patch_size = int(patch_size)
        local: List[nn.Module] = []
        cin = in_channels
        for i, width in enumerate(widths):
            local += [nn.Conv2d(cin, width, 3, stride=1 if i == 0 else 2, padding=1, bias=False),
                      nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            cin = width
        self.local = nn.Sequential(*local)
        mix: List[nn.Module] = []
        for _ in range(depth):
            mix += [nn.Conv2d(cin, cin, 1, bias=False), nn.BatchNorm2d(cin), nn.ReLU(inplace=True)]
        self.mix = nn.Sequential(*mix)

    def forward(self, x: Tensor) -> Tuple[Tensor]:
        n, c, h, w = x.shape
        p = self.patch_size
        if h % p or w % p:
            raise ValueError(f'BagOfLocalFeatures: input {h}x{w} is not a multiple of the patch '
                             f'size {p}')
        gh, gw = h // p, w // p
        patches = x.reshape(n, c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5).reshape(-1, c, p, p)
        feats = self.local(patches).mean((2, 3))  # (N * gh * gw, C): one vector per patch
        feats = feats.reshape(n, gh, gw, -1).permute(0, 3, 1, 2).contiguous()
        return (self.mix(feats), )


def _patch_local_pre_hook(module: nn.Module, args: Tuple[Any, ...]) -> Tuple[Any, ...]:
    x = args[0]
    n, c, h, w = x.shape
    p = module.patch_local_size
    if h % p or w % p:
        raise ValueError(f'PatchLocal: input {h}x{w} is not a multiple of the patch size {p}')
    gh, gw = h // p, w // p
    module._patch_local_grid = (n, gh, gw)
    patches = x.reshape(n, c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5).reshape(-1, c, p, p)
    return (patches, ) + tuple(args[1:])


def _patch_local_hook(module: nn.Module, args: Any, output: Any) -> Any:
    n, gh, gw = module._patch_local_grid

    def tile(t: Tensor) -> Tensor:
        vec = t.mean((2, 3)) if t.dim() == 4 else t.reshape(t.shape[0], -1)
        return vec.reshape(n, gh, gw, -1).permute(0, 3, 1, 2).contiguous()

    if isinstance(output, Tensor):
        return tile(output)
    return type(output)(tile(o) if isinstance(o, Tensor) else o for o in output)


def PatchLocal(backbone: dict, patch_size: int = 16, **overrides) -> nn.Module:
    """A texture-only (bag-of-local-features) version of any image backbone: ``backbone`` is
    built as usual (same class and checkpoint keys, so the weights of the normal model load
    unchanged) but runs on each non-overlapping ``patch_size`` patch on its own; every output
    is average-pooled per patch and tiled back into an ``(N, C, H/p, W/p)`` map. With global
    average pooling its features are invariant to any rearrangement of the patches at that
    grid: the DiSRT control with the very weights of the model under test."""
    model = MODELS.build(dict(copy.deepcopy(backbone), **overrides))
    model.patch_local_size = int(patch_size)
    model.register_forward_pre_hook(_patch_local_pre_hook)
    model.register_forward_hook(_patch_local_hook)
    return model


MODELS.register_module(name='PatchLocal', module=PatchLocal)
