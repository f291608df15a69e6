"""An EMA teacher kept inside the algorithm (as mmpretrain's BYOL/MoCoV3 keep theirs), with the
momentum schedules of the methods that use one: constant, HPM's per-epoch ramp, BYOL/PixPro's
cosine."""
import copy
import math
from typing import Optional

import torch
from torch import nn

from mmmask.models.masking import training_progress


def ema_decay(schedule: str, decay: float, end_decay: float = 1.0) -> float:
    """The decay (weight on the teacher) for the current MessageHub progress.

    - ``constant``: ``decay``.
    - ``hpm``: HPM's ``decay + (end_decay - decay) * epoch / 100`` for epoch < 100, then
      ``end_decay`` (HPM: decay 0.999, end_decay 0.9999, i.e. +0.0009·epoch/100).
    - ``cosine``: ``end_decay - (end_decay - decay) * (cos(pi * iter / max_iters) + 1) / 2``
      (BYOL; PixPro with decay 0.99, end 1.0).
    """
    p = training_progress()
    if schedule == 'constant':
        return decay
    if schedule == 'hpm':
        if p['epoch'] < 100:
            return decay + (end_decay - decay) * p['epoch'] / 100
        return end_decay
    if schedule == 'cosine':
        t = min(p['iter'] / max(p['max_iters'], 1), 1.0)
        return end_decay - (end_decay - decay) * (math.cos(math.pi * t) + 1) / 2
    raise ValueError(f'unknown EMA schedule {schedule!r}; use constant, hpm or cosine')


class EMATeacher(nn.Module):
    """A frozen copy of ``model`` updated as ``t = d·t + (1-d)·s`` by :meth:`update`.

    Args:
        model: the student module to copy (the copy is taken at construction, after the student's
            init; call :meth:`reset` after loading weights into the student).
        decay: teacher weight (``1 - momentum`` in mmengine's EMA convention).
        schedule: ``constant``, ``hpm`` or ``cosine`` (see :func:`ema_decay`).
        end_decay: the schedule's end value.
        update_buffers: also average float buffers (BN statistics); otherwise copy them
            (shorthand for ``buffers='average'`` / ``'copy'``).
        buffers: what :meth:`update` does with the teacher's buffers: ``copy`` the student's
            (default), ``average`` the float ones like the parameters, or leave them ``own``:
            the teacher keeps its own BN statistics, updated only by its own forwards. With
            ``own`` the teacher also follows ``train()``/``eval()`` (BN uses batch statistics in
            training), as PixPro's key encoder does (Xie et al., CVPR 2021, official
            ``_momentum_update_key_encoder`` averages parameters only); otherwise the teacher
            always runs in eval mode.
    """

    BUFFER_MODES = ('copy', 'average', 'own')

    def __init__(self, model: nn.Module, decay: float = 0.999, schedule: str = 'constant',
                 end_decay: float = 1.0, update_buffers: bool = False,
                 buffers: Optional[str] = None):
        super().__init__()
        ema_decay(schedule, decay, end_decay)  # validate the schedule name
        if buffers is None:
            buffers = 'average' if update_buffers else 'copy'
        elif buffers not in self.BUFFER_MODES:
            raise ValueError(f'unknown EMATeacher buffers mode {buffers!r}; use copy, average '
                             'or own')
        elif update_buffers and buffers != 'average':
            raise ValueError(f"update_buffers=True contradicts buffers={buffers!r}; give only "
                             "buffers='average'")
        self.module = copy.deepcopy(model)
        self.module.requires_grad_(False)
        self.decay, self.schedule, self.end_decay = decay, schedule, end_decay
        self.buffers_mode = buffers
        self.update_buffers = buffers == 'average'

    def current_decay(self) -> float:
        return ema_decay(self.schedule, self.decay, self.end_decay)

    @torch.no_grad()
    def reset(self, model: nn.Module) -> None:
        """Copy the student's weights into the teacher."""
        self.module.load_state_dict(model.state_dict())

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float = None) -> None:
        d = self.current_decay() if decay is None else decay
        teacher = list(self.module.parameters())
        student = [p.detach() for p in model.parameters()]
        torch._foreach_mul_(teacher, d)
        torch._foreach_add_(teacher, student, alpha=1 - d)
        if self.buffers_mode == 'own':
            return
        for t, s in zip(self.module.buffers(), model.buffers()):
            if self.update_buffers and t.dtype.is_floating_point:
                t.mul_(d).add_(s.detach(), alpha=1 - d)
            else:
                t.copy_(s)

    def forward(self, *args, **kwargs):
        with torch.no_grad():
            return self.module(*args, **kwargs)

    def train(self, mode: bool = True):
        # the teacher never uses dropout/drop-path, except a teacher with its own BN statistics
        # (``buffers='own'``), which runs in train mode like its student
        super().train(mode if self.buffers_mode == 'own' else False)
        return self
