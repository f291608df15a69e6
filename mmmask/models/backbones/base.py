"""Shared backbone behaviour: frozen stages and ``norm_eval`` (the mmcv/mmseg ResNet convention)."""
from typing import Dict, List, Sequence, Union

from torch import nn


def resolve_arch(name: str, arch: Union[str, dict], arch_zoo: Dict[str, dict],
                 arch_keys: Sequence[str], per_stage: bool = False) -> dict:
    """``arch`` as a preset of ``arch_zoo`` or a dict with every key of ``arch_keys`` (a copy);
    with ``per_stage`` every key must have one entry per stage (``len(embed_dims)``). Errors name
    the model (``name``) and the valid choices."""
    if isinstance(arch, str):
        if arch not in arch_zoo:
            raise ValueError(f'Unknown {name} arch {arch!r}; valid: {sorted(arch_zoo)} '
                             f'or a dict with keys {list(arch_keys)}')
        return dict(arch_zoo[arch])
    missing = set(arch_keys) - set(arch)
    if missing:
        raise ValueError(f'{name} arch dict misses {sorted(missing)} (needs {list(arch_keys)})')
    arch = dict(arch)
    if per_stage:
        n = len(arch['embed_dims'])
        for key in arch_keys:
            if len(arch[key]) != n:
                raise ValueError(f'{name} arch: {key} has {len(arch[key])} entries, expected {n}')
    return arch


def normalize_out_indices(out_indices: Union[int, Sequence[int]], num_stages: int,
                          unit: str = 'stages') -> List[int]:
    """Sorted, de-duplicated non-negative indices; negative ones count from the end (``-1`` =
    last). ``unit`` names what is indexed in the error (stages, layers, branches)."""
    out_indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
    for i in out_indices:
        if not -num_stages <= i < num_stages:
            raise ValueError(f'out_indices {out_indices} out of range for {num_stages} {unit}')
    return sorted({i % num_stages for i in out_indices})


class FrozenStagesMixin:
    """``train()`` that keeps the first stages frozen and, with ``self.norm_eval``, every
    BatchNorm in eval mode. The backbone defines ``_freeze_stages()`` (which modules form its
    frozen stages) and sets ``norm_eval``."""

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self
