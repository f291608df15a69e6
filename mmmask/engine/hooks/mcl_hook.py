"""Stage driver of MCL (Zhang et al., "Learning the Unlearned: Mitigating Feature Suppression in
Contrastive Learning", ECCV 2024, arXiv 2402.11816; official stage step: ``MajorDavidZhang/MCL``
``cluster.py``) inside one mmengine run.

At the end of every stage but the last, :class:`MCLStageHook` embeds the train set with the
finished stage (L2-normalised, ``cluster.py`` L50-57), clusters it with :func:`kmeans`, integrates
the stage's cluster labels into pseudo labels (:func:`integrate_pseudo_labels`), freezes the
stage's encoder in ``mmmask.MCL`` and switches the train dataloader's
``mmmask.ClusterBatchSampler`` to single-cluster batches for the next stage.
"""
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.dist import all_reduce, broadcast, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop, Runner
from torch import Tensor

from mmmask.registry import HOOKS

__all__ = ['MCLStageHook', 'kmeans', 'integrate_pseudo_labels']


# ------------------------------------------------------------------------------------- k-means
def _sq_dists(x: Tensor, c: Tensor, chunk: int = 8192) -> Tensor:
    out = [torch.cdist(x[i:i + chunk], c).pow_(2) for i in range(0, x.shape[0], chunk)]
    return torch.cat(out)


def _kmeans_pp(x: Tensor, k: int, gen: torch.Generator) -> Tensor:
    """Greedy k-means++ seeding (``2 + ⌊ln k⌋`` candidates per centre, as scikit-learn)."""
    n = x.shape[0]
    trials = 2 + int(math.log(k))
    centres = [x[torch.randint(n, (1, ), generator=gen)].squeeze(0)]
    closest = _sq_dists(x, centres[0][None]).squeeze(1)
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0:  # fewer distinct points than k: any point will do
            cand = torch.randint(n, (trials, ), generator=gen)
        else:
            cand = torch.multinomial(closest / total, trials, replacement=True, generator=gen)
        pot = torch.minimum(closest[None], _sq_dists(x, x[cand]).T)  # [trials, n]
        best = int(pot.sum(1).argmin())
        centres.append(x[cand[best]])
        closest = pot[best]
    return torch.stack(centres)


def kmeans(x: Tensor, k: int, max_iter: int = 100, tol: float = 1e-5,
           batch_size: Optional[int] = None, seed: int = 0) -> Tuple[Tensor, Tensor, float]:
    """k-means of the rows of ``x``: returns ``(centroids [k, D], labels [n], inertia)``.

    Replaces the official scikit-learn ``MiniBatchKMeans(n_clusters, batch_size=1e6,
    max_iter=100, tol=1e-5)``. Here: greedy k-means++ seeding from a seeded generator, then full
    Lloyd iterations when ``batch_size`` is ``None`` or ``>= n`` (the official batch of 10^6 covers
    any dataset below a million images — scikit-learn still resamples that batch *with
    replacement* and uses count-weighted centre updates, so the two differ in their random path,
    not in the objective); otherwise mini-batch updates with per-centre ``1/count`` step sizes
    (Sculley 2010, as scikit-learn), ``max_iter`` passes over the data. Stops when the summed
    squared centre shift falls below ``tol`` times the mean per-feature variance (scikit-learn's
    ``KMeans`` tolerance). An empty cluster is re-seeded at the point farthest from its centre.
    Labels are the nearest centroids of all rows (the official ``kmeans.predict(features)``).
    """
    if x.dim() != 2 or x.shape[0] < k:
        raise ValueError(f'kmeans needs a [n, D] matrix with n >= k={k}, got {tuple(x.shape)}')
    x = x.float()
    n = x.shape[0]
    gen = torch.Generator().manual_seed(int(seed))
    centres = _kmeans_pp(x, k, gen)
    threshold = tol * float(x.var(0).mean())
    counts = torch.zeros(k)
    minibatch = batch_size is not None and batch_size < n
    for _ in range(max_iter):
        old = centres.clone()
        order = torch.randperm(n, generator=gen) if minibatch else torch.arange(n)
        step = batch_size if minibatch else n
        for start in range(0, n, step):
            xb = x[order[start:start + step]]
            d = _sq_dists(xb, centres)
            lab = d.argmin(1)
            sums = torch.zeros_like(centres).index_add_(0, lab, xb)
            cnt = torch.bincount(lab, minlength=k).float()
            if minibatch:
                counts += cnt
                seen = cnt > 0
                centres[seen] += (sums[seen] - cnt[seen, None] * centres[seen]) / counts[seen,
                                                                                         None]
            else:
                seen = cnt > 0
                centres[seen] = sums[seen] / cnt[seen, None]
                for c in (~seen).nonzero().flatten().tolist():
                    far = int(d.gather(1, lab[:, None]).squeeze(1).argmax())
                    centres[c] = xb[far]
                    d[far] = 0  # do not pick the same point twice
        if float((centres - old).pow(2).sum()) <= threshold:
            break
    d = _sq_dists(x, centres)
    labels = d.argmin(1)
    inertia = float(d.gather(1, labels[:, None]).sum())
    return centres, labels, inertia


# --------------------------------------------------------------------------- pseudo labels
def integrate_pseudo_labels(cluster_labels: Sequence[Tensor], num_clusters: int,
                            mode: str = 'official') -> Tensor:
    """Pseudo labels of stage ``len(cluster_labels) − 1`` from every stage's cluster labels.

    ``mode='paper'``: ``p ← p·K + c_s`` for ``s = 0..stage`` — the intersection of all stages'
    clusters (paper §4, "pseudo-label" of each sample). ``mode='official'`` reproduces the released
    ``cluster.py`` L76-80, whose loop reloads the *current* stage's labels at every step, so
    ``p = c_stage · (K^stage + … + K + 1)``: the current stage's clusters only, relabelled sparsely
    (stage 1: ``c·(K+1)``; ``max+1`` cluster ids of which most are empty for the sampler).
    """
    if mode not in ('official', 'paper'):
        raise ValueError(f"integration mode must be 'official' (released cluster.py) or 'paper', "
                         f'got {mode!r}')
    if not cluster_labels:
        raise ValueError('no stage cluster labels to integrate')
    stage = len(cluster_labels) - 1
    p = torch.zeros_like(cluster_labels[stage], dtype=torch.long)
    for s in range(stage + 1):
        p = p * num_clusters + cluster_labels[stage if mode == 'official' else s].long()
    return p


# -------------------------------------------------------------------------------------- hook
@HOOKS.register_module()
class MCLStageHook(Hook):
    """Runs MCL's stages in one training run (model ``mmmask.MCL``, train dataloader with
    ``batch_sampler=dict(type='mmmask.ClusterBatchSampler')``, ``EpochBasedTrainLoop``).

    Args:
        stage_epochs: epochs of each stage; they must add up to ``train_cfg.max_epochs``.
        cluster_dataloader: dataloader config over the *train set* with a deterministic
            (non-augmented) pipeline, e.g. the k-NN bank loader; ``sample_idx`` of its data
            samples maps features to train indices (otherwise loader order = dataset order).
        num_clusters: K of the k-means (official default 10).
        integration: ``'official'`` (released ``cluster.py`` quirk, default) or ``'paper'``; see
            :func:`integrate_pseudo_labels`.
        reinit: start every stage from a fresh initialisation (official: every stage fine-tunes
            from the same ``--pretrained`` weights) instead of continuing the last stage.
        reset_optimizer: clear the optimizer state (momenta) at a stage start (a new official run).
        kmeans_cfg: ``max_iter``, ``tol``, ``batch_size`` of :func:`kmeans` (official 100, 1e-5,
            10^6).
        seed: k-means seed (default: the run's seed); stage ``s`` uses ``seed + s``.
        save_labels: write ``mcl_stage{s}_{cluster_labels,pseudo_labels,centroids}.pt`` to the
            work dir (as the official ``./save``).

    Logged per epoch (and kept in the MessageHub): ``mcl/single_cluster_batches`` — the fraction
    of the epoch's batches whose images share one pseudo label of the current stage (1.0 in every
    stage after the first; the data samples' ``sample_idx`` identify the images).
    """
    priority = 'ABOVE_NORMAL'  # before CheckpointHook and the k-NN probe of the same epoch

    def __init__(self, stage_epochs: Sequence[int], cluster_dataloader: dict,
                 num_clusters: int = 10, integration: str = 'official', reinit: bool = True,
                 reset_optimizer: bool = True, kmeans_cfg: Optional[dict] = None,
                 seed: Optional[int] = None, save_labels: bool = True) -> None:
        if not stage_epochs or any(int(e) != e or e < 1 for e in stage_epochs):
            raise ValueError(f'stage_epochs must be positive ints, got {stage_epochs!r}')
        if integration not in ('official', 'paper'):
            raise ValueError(f"integration must be 'official' or 'paper', got {integration!r}")
        if num_clusters < 2:
            raise ValueError(f'num_clusters must be >= 2, got {num_clusters}')
        self.stage_epochs = [int(e) for e in stage_epochs]
        self.stage_ends = [sum(self.stage_epochs[:i + 1]) for i in range(len(stage_epochs))]
        self.cluster_cfg, self.num_clusters = cluster_dataloader, num_clusters
        self.integration, self.reinit, self.reset_optimizer = integration, reinit, reset_optimizer
        self.kmeans_cfg = dict(max_iter=100, tol=1e-5, batch_size=None, **(kmeans_cfg or {}))
        self.seed, self.save_labels = seed, save_labels
        self.cluster_labels: List[Tensor] = []
        self.pseudo_labels: Optional[Tensor] = None
        self._loader = None
        self._batches = [0, 0]  # [single-cluster, all] of the running epoch

    # ----------------------------------------------------------------- helpers
    @staticmethod
    def _model(runner: Runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'finish_stage'):
            raise TypeError('MCLStageHook drives an mmmask.MCL model: wrap the contrastive '
                            "algorithm as model=dict(type='mmmask.MCL', algorithm=dict(...))")
        return model

    @staticmethod
    def _sampler(runner: Runner) -> 'ClusterBatchSampler':  # noqa: F821
        # imported here: mmmask.datasets pulls in mmseg (mmcv ops), which `import mmmask` must not
        from mmmask.datasets.samplers.cluster_sampler import ClusterBatchSampler
        sampler = getattr(runner.train_dataloader, 'batch_sampler', None)
        if not isinstance(sampler, ClusterBatchSampler):
            raise TypeError("MCLStageHook needs train_dataloader.batch_sampler="
                            "dict(type='mmmask.ClusterBatchSampler') (and no drop_last in "
                            f'train_dataloader), got {type(sampler).__name__}')
        return sampler

    @property
    def stage(self) -> int:
        """The stage being trained (number of finished stages)."""
        return len(self.cluster_labels)

    def _refresh_max_iters(self, runner: Runner, epochs_done: int) -> None:
        """The loop computed ``max_iters`` from the stage-0 epoch length; later stages are shorter
        (per-cluster truncation), so recount the remaining epochs (logging, ETA, schedules that read
        ``max_iters``)."""
        loop = runner.train_loop
        loop._max_iters = loop.iter + (loop.max_epochs - epochs_done) * len(loop.dataloader)

    # ------------------------------------------------------------------- hooks
    def before_train(self, runner: Runner) -> None:
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            raise TypeError('MCLStageHook counts stages in epochs: use '
                            "train_cfg=dict(type='EpochBasedTrainLoop', ...)")
        if runner.max_epochs != self.stage_ends[-1]:
            raise ValueError(f'stage_epochs {self.stage_epochs} add up to {self.stage_ends[-1]} '
                             f'but train_cfg.max_epochs={runner.max_epochs}: make them equal')
        model, sampler = self._model(runner), self._sampler(runner)
        if model.num_finished != self.stage:
            raise RuntimeError(f'the model has {model.num_finished} finished MCL stages, the hook '
                               f'{self.stage}: resume from a checkpoint of this run')
        if self.stage:  # resumed mid-run
            sampler.set_pseudo_labels(self.pseudo_labels)
            self._refresh_max_iters(runner, runner.epoch)
        runner.logger.info(f'MCL: stages of {self.stage_epochs} epochs, K={self.num_clusters}, '
                           f'{self.integration} integration; training stage {self.stage}')

    def before_train_epoch(self, runner: Runner) -> None:
        self._batches = [0, 0]

    def before_train_iter(self, runner: Runner, batch_idx: int, data_batch=None) -> None:
        if self.pseudo_labels is None or not data_batch:
            return
        samples = data_batch.get('data_samples') if isinstance(data_batch, dict) else None
        idx = [s.get('sample_idx') for s in samples or []]
        if not idx or any(i is None for i in idx):
            return
        ids = self.pseudo_labels[torch.as_tensor(idx, dtype=torch.long)]
        self._batches[0] += int(bool((ids == ids[0]).all()))
        self._batches[1] += 1

    def after_train_epoch(self, runner: Runner) -> None:
        single, total = self._batches
        if total:
            runner.message_hub.update_info('mcl/single_cluster_batches', single / total)
            runner.logger.info(f'MCL stage {self.stage} epoch {runner.epoch + 1}: {single}/{total} '
                               'batches single-cluster')
        done = runner.epoch + 1
        if done in self.stage_ends[:-1]:
            self._next_stage(runner)

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        checkpoint['mcl'] = dict(cluster_labels=[c.clone() for c in self.cluster_labels],
                                 pseudo_labels=self.pseudo_labels,
                                 num_clusters=self.num_clusters, integration=self.integration)

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        state = checkpoint.get('mcl')
        if state is None:
            return
        self.cluster_labels = list(state['cluster_labels'])
        self.pseudo_labels = state['pseudo_labels']

    # ------------------------------------------------------------------ stages
    @torch.no_grad()
    def extract(self, runner: Runner, model) -> Tensor:
        """``[len(train set), D]`` L2-normalised embeddings of the current stage."""
        if self._loader is None:
            self._loader = Runner.build_dataloader(self.cluster_cfg, seed=runner.seed) \
                if isinstance(self.cluster_cfg, dict) else self.cluster_cfg
        n = len(runner.train_dataloader.dataset)
        if len(self._loader.dataset) != n:
            raise ValueError(f'cluster_dataloader has {len(self._loader.dataset)} images, the '
                             f'train set {n}: point it at the train set (same order)')
        was_training = model.training
        model.eval()
        feats: Optional[Tensor] = None
        hits = torch.zeros(n)
        pos = 0
        for batch in self._loader:
            data = model.data_preprocessor(batch, False)
            inputs = data['inputs'][0] if isinstance(data['inputs'], list) else data['inputs']
            f = model.cluster_feat(inputs).cpu()
            samples = data.get('data_samples') or []
            idx = [s.get('sample_idx') for s in samples]
            if len(idx) != f.shape[0] or any(i is None for i in idx):
                idx = list(range(pos, pos + f.shape[0]))
            pos += f.shape[0]
            if feats is None:
                feats = torch.zeros(n, f.shape[1])
            idx_t = torch.as_tensor(idx, dtype=torch.long)
            feats[idx_t] = f
            hits[idx_t] = 1
        model.train(was_training)
        device = next(model.parameters()).device  # NCCL reduces device tensors
        feats, hits = feats.to(device), hits.to(device)
        all_reduce(feats)  # distributed: each rank embedded a shard (no-op otherwise)
        all_reduce(hits)
        if bool((hits == 0).any()):
            raise RuntimeError(f'{int((hits == 0).sum())} train images were not embedded: the '
                               'cluster_dataloader must cover the whole train set')
        return (feats / hits[:, None]).cpu()

    def _next_stage(self, runner: Runner) -> None:
        model, sampler = self._model(runner), self._sampler(runner)
        stage = self.stage
        feats = self.extract(runner, model)
        seed = (runner.seed if self.seed is None else self.seed) + stage
        labels = torch.zeros(feats.shape[0], dtype=torch.long,
                             device=next(model.parameters()).device)
        info: Dict[str, float] = {}
        if is_main_process():
            centroids, found, inertia = kmeans(feats, self.num_clusters, seed=seed,
                                               **self.kmeans_cfg)
            labels.copy_(found)
            info['inertia'] = inertia
        broadcast(labels, 0)
        labels = labels.cpu()
        self.cluster_labels.append(labels)
        self.pseudo_labels = integrate_pseudo_labels(self.cluster_labels, self.num_clusters,
                                                     self.integration)
        model.finish_stage(reinit=self.reinit)
        if self.reinit:  # every rank starts the stage from rank 0's fresh weights
            for t in model.algorithm.state_dict().values():
                broadcast(t, 0)
        if self.reset_optimizer:
            wrappers = runner.optim_wrapper.values() if hasattr(runner.optim_wrapper, 'values') \
                else [runner.optim_wrapper]
            for w in wrappers:
                w.optimizer.state.clear()
        sampler.set_pseudo_labels(self.pseudo_labels)
        self._refresh_max_iters(runner, runner.epoch + 1)
        sizes = sampler.cluster_sizes()
        runner.logger.info(
            f'MCL stage {stage} done: k-means K={self.num_clusters} on {feats.shape[0]} '
            f'{feats.shape[1]}-d embeddings (inertia {info.get("inertia", float("nan")):.2f}), '
            f'cluster sizes {torch.bincount(labels, minlength=self.num_clusters).tolist()}; '
            f'{self.integration} pseudo labels: {int((sizes > 0).sum())} non-empty of '
            f'{sampler.num_clusters} ids; stage {stage + 1} runs {len(sampler)} single-cluster '
            f'batches/epoch ({"fresh init" if self.reinit else "continued"} encoder, stage {stage} '
            'frozen)')
        if self.save_labels and is_main_process() and runner.work_dir:
            for name, value in (('cluster_labels', labels), ('pseudo_labels', self.pseudo_labels)):
                torch.save(value, osp.join(runner.work_dir, f'mcl_stage{stage}_{name}.pt'))
            if 'inertia' in info:
                torch.save(centroids, osp.join(runner.work_dir, f'mcl_stage{stage}_centroids.pt'))
