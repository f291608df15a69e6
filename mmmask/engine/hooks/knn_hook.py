"""Frozen-feature probes (k-NN, linear) of a self-supervised backbone during pretraining."""
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from mmmask.evaluation.knn import knn_accuracy, linear_probe_accuracy, pool_features
from mmmask.registry import HOOKS


@HOOKS.register_module()
class KNNEvalHook(Hook):
    """Weighted k-NN top-1 (and optionally a linear probe) of the backbone's frozen features.

    Features come from ``model.extract_feat(inputs)`` (mmpretrain ``BaseSelfSupervisor``: the
    backbone's plain forward) pooled by :func:`mmmask.evaluation.knn.pool_features`. Scores are
    logged as ``val/knn_top1`` / ``val/linear_top1`` (every ``interval`` iterations and after
    training, so ``tools/train.py`` prints them as final validation metrics) and, with
    ``before_train=True``, ``val/knn_init_top1`` / ``val/linear_init_top1`` for the initial
    (random-init) backbone of the same run — the baseline a learning claim is measured against.

    Args:
        train_dataloader / val_dataloader: dataloader configs (or objects) of the labelled bank
            and queries; labels come from ``data_samples[i].gt_label``.
        num_classes: number of classes.
        k, temperature: DINO's k-NN protocol (k=20, T=0.07).
        interval: iterations between evaluations (0: only after training).
        pool: ``mean`` (patch-token mean), ``cls`` or ``flatten`` (see ``pool_features``).
        linear_probe: also fit a linear classifier (full-batch Adam, ``linear_steps`` steps).
    """
    priority = 'LOW'

    def __init__(self, train_dataloader, val_dataloader, num_classes: int, k: int = 20,
                 temperature: float = 0.07, interval: int = 0, before_train: bool = True,
                 pool: str = 'mean', linear_probe: bool = False, linear_steps: int = 300):
        self.train_cfg, self.val_cfg = train_dataloader, val_dataloader
        self.pool, self.linear_probe, self.linear_steps = pool, linear_probe, linear_steps
        self.num_classes, self.k, self.temperature = num_classes, k, temperature
        self.interval, self.eval_before_train = interval, before_train
        self._loaders: Optional[tuple] = None

    def _build(self, runner: Runner):
        if self._loaders is None:
            seed = runner.seed if hasattr(runner, 'seed') else None
            self._loaders = tuple(
                Runner.build_dataloader(cfg, seed=seed) if isinstance(cfg, dict) else cfg
                for cfg in (self.train_cfg, self.val_cfg))
        return self._loaders

    @torch.no_grad()
    def _features(self, model, loader):
        feats, labels = [], []
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            inputs = data['inputs']
            if isinstance(inputs, (list, tuple)):
                inputs = inputs[0]
            feats.append(pool_features(model.extract_feat(inputs), self.pool).cpu())
            labels.append(torch.cat([s.gt_label for s in data['data_samples']]).cpu())
        return torch.cat(feats), torch.cat(labels)

    def evaluate(self, runner: Runner, stage: str) -> float:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        was_training = model.training
        model.eval()
        train_loader, val_loader = self._build(runner)
        bank, bank_y = self._features(model, train_loader)
        query, query_y = self._features(model, val_loader)
        model.train(was_training)
        acc = knn_accuracy(bank, bank_y, query, query_y, self.num_classes, self.k,
                           self.temperature)
        runner.message_hub.update_scalar(f'val/knn{stage}_top1', acc)
        msg = f'k-NN{stage} (k={self.k}, {self.pool}): {acc:.2f}'
        if self.linear_probe:
            lin = linear_probe_accuracy(bank, bank_y, query, query_y, self.num_classes,
                                        self.linear_steps)
            runner.message_hub.update_scalar(f'val/linear{stage}_top1', lin)
            msg += f', linear probe{stage}: {lin:.2f}'
        runner.logger.info(msg)
        return acc

    def before_train(self, runner: Runner) -> None:
        if self.eval_before_train:
            self.evaluate(runner, '_init')

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if self.interval and self.every_n_train_iters(runner, self.interval) \
                and runner.iter + 1 < runner.max_iters:
            self.evaluate(runner, '')

    def after_train(self, runner: Runner) -> None:
        self.evaluate(runner, '')
