"""Optimizer wrappers."""
from contextlib import contextmanager
from typing import Union

import torch
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from torch import nn

from ..registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(AmpOptimWrapper):
    """Mixed precision on CPU: bf16 autocast, no loss scaling.

    mmengine's :class:`AmpOptimWrapper` refuses to run without an accelerator; ``import mmmask``
    makes it resolve to this class on CPU-only machines, so ``--amp`` and ``AmpOptimWrapper``
    configs work everywhere. bf16 has fp32's exponent range, so no ``GradScaler`` is needed; a
    requested float16 is replaced by bfloat16 (CPU autocast supports bf16 only).
    """

    def __init__(self, loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Union[str, torch.dtype, None] = None, use_fsdp: bool = False, **kwargs):
        OptimWrapper.__init__(self, **kwargs)  # skip AmpOptimWrapper's accelerator assert
        if dtype not in (None, 'bfloat16', torch.bfloat16):
            print_log(f'CPU autocast supports bfloat16 only; ignoring dtype={dtype}.',
                      logger='current')
        self.cast_dtype = torch.bfloat16
        self.loss_scale = loss_scale  # kept for the record; bf16 needs no scaling

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        loss.backward(**kwargs)
        self._inner_count += 1

    def step(self, **kwargs) -> None:
        if self.clip_grad_kwargs:
            self._clip_grad()
        self.optimizer.step(**kwargs)

    def state_dict(self) -> dict:
        return OptimWrapper.state_dict(self)

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        state_dict.pop('loss_scaler', None)  # e.g. resuming a GPU AMP run on CPU
        if 'base_param_settings' in state_dict:
            self.base_param_settings = state_dict.pop('base_param_settings')
        self.optimizer.load_state_dict(state_dict)

    @contextmanager
    def optim_context(self, model: nn.Module):
        with OptimWrapper.optim_context(self, model), \
                torch.autocast(device_type='cpu', dtype=self.cast_dtype):
            yield
