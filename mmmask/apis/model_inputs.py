"""Build the model of a config (in its scope) and make inputs for it, for analysis tools."""
from typing import Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmmask'))
    return cfg


def build_model_from_cfg(cfg: Config, device: str = 'cpu') -> torch.nn.Module:
    """Build ``cfg.model`` in the config's default scope, without loading pretrained weights."""
    model_cfg = cfg.model.copy()
    model = MODELS.build(model_cfg)
    return model.to(device).eval()


def dummy_inputs(shape: Sequence[int], batch_size: int = 1, device: str = 'cpu') -> torch.Tensor:
    """A normalised random batch ``(B, C, H, W)`` as the model's data preprocessor would output.

    ``shape`` is ``(H, W)`` or ``(C, H, W)``; C defaults to 3.
    """
    shape = tuple(shape)
    if len(shape) == 2:
        shape = (3, ) + shape
    if len(shape) != 3:
        raise ValueError(f'--shape takes H W or C H W, got {shape}')
    gen = torch.Generator().manual_seed(0)
    return torch.randn((batch_size, ) + shape, generator=gen).to(device)


def forward_tensor(model: torch.nn.Module, inputs: torch.Tensor, data_samples=None):
    """The model's plain forward (``mode='tensor'``) for OpenMMLab models, else ``model(x)``."""
    try:
        return model(inputs, data_samples, mode='tensor')
    except TypeError:
        return model(inputs)
