"""Build the model of a config (in its scope) and make inputs for it, for analysis tools."""
import os
import os.path as osp
from typing import List, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope


IMG_EXTS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp', '.tif', '.tiff')


def list_images(path: str) -> List[str]:
    """``[path]`` for an image file, else every image under the folder ``path`` (recursive,
    sorted); a clear error when there is none."""
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f'no such image file or folder: {path}')
    found = []
    for root, _, files in os.walk(path):
        found += [osp.join(root, f) for f in files if f.lower().endswith(IMG_EXTS)]
    if not found:
        raise FileNotFoundError(f'no images ({", ".join(IMG_EXTS)}) under {path}')
    return sorted(found)


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


def load_trained_model(cfg: Config, checkpoint: Optional[str], device: str = 'cpu',
                       strict: bool = False) -> torch.nn.Module:
    """``cfg.model`` built in the config's scope (default mmpretrain) with ``checkpoint`` loaded,
    in eval mode: what the analysis tools run on.

    ``checkpoint`` may be a file, a URL, or ``None``/``'none'`` for the initialised weights
    (``init_weights`` is called, so configs' ``init_cfg`` apply).
    """
    from mmengine.runner import load_checkpoint

    import mmmask.models  # noqa: F401  (registers mmmask.*)
    from mmmask.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model = MODELS.build(cfg.model.copy())
    if checkpoint and checkpoint != 'none':
        if not osp.isfile(checkpoint) and '://' not in checkpoint:
            raise FileNotFoundError(f'checkpoint {checkpoint!r} not found (pass a .pth file, a '
                                    "URL or 'none' for the initial weights)")
        load_checkpoint(model, checkpoint, map_location='cpu', strict=strict)
    elif hasattr(model, 'init_weights'):
        model.init_weights()
    return model.to(device).eval()


def evenly_spaced_inputs(cfg: Config, model: torch.nn.Module, num: int, batch_size: int = 32,
                         pipeline_fn=None):
    """``num`` validation images spread evenly over ``cfg.val_dataloader``'s dataset (not just its
    first classes), preprocessed by ``model.data_preprocessor``, with their labels.

    ``pipeline_fn`` may rewrite the (innermost) dataset's pipeline first.
    """
    import copy

    import numpy as np
    from mmengine.runner import Runner
    loader_cfg = copy.deepcopy(cfg.val_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    if pipeline_fn is not None:
        dataset_cfg = loader_cfg['dataset']
        while 'pipeline' not in dataset_cfg and 'dataset' in dataset_cfg:
            dataset_cfg = dataset_cfg['dataset']
        dataset_cfg['pipeline'] = pipeline_fn(dataset_cfg['pipeline'])
    loader = Runner.build_dataloader(loader_cfg)
    dataset = loader.dataset
    index = np.unique(np.linspace(0, len(dataset) - 1, min(num, len(dataset))).round().astype(int))
    inputs, labels = [], []
    for start in range(0, len(index), batch_size):
        batch = loader.collate_fn([dataset[int(i)] for i in index[start:start + batch_size]])
        data = model.data_preprocessor(batch, False)
        inputs.append(data['inputs'])
        labels += [int(s.gt_label[0]) for s in data['data_samples']]
    return torch.cat(inputs), torch.tensor(labels)


def write_tool_report(path: str, summary: dict, records: list, title: str) -> dict:
    """Write ``{'summary': ..., 'images': records}`` as JSON to ``path`` and print the summary as
    one ``title: key=value ...`` line (floats to 4 decimals); returns the dict."""
    import json
    result = dict(summary=summary, images=records)
    with open(path, 'w') as f:
        json.dump(result, f, indent=1)
    print(f'{title}:', ' '.join(f'{k}={v:.4f}' if isinstance(v, float) else f'{k}={v}'
                                for k, v in summary.items()), flush=True)
    return result
