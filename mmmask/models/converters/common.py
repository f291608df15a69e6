"""Shared helpers of the checkpoint converters."""
import re
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from torch import Tensor


class ConversionError(KeyError):
    """A checkpoint does not look like what the converter expects; the message lists the keys."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ''


#: timm / DINO ``VisionTransformer`` keys under ``backbone.`` -> mmpretrain ``VisionTransformer``
#: keys (GMML, TOV-VICReg and other DINO-derived code bases share this layout).
_TIMM_BLOCK = r'backbone\.blocks\.(\d+)\.'
TIMM_VIT_BACKBONE_RULES = [
    (r'backbone\.(cls_token|pos_embed)', r'backbone.\1'),
    (r'backbone\.patch_embed\.proj\.(weight|bias)', r'backbone.patch_embed.projection.\1'),
    (_TIMM_BLOCK + r'norm1\.(weight|bias)', r'backbone.layers.\1.ln1.\2'),
    (_TIMM_BLOCK + r'norm2\.(weight|bias)', r'backbone.layers.\1.ln2.\2'),
    (_TIMM_BLOCK + r'attn\.(qkv|proj)\.(weight|bias)', r'backbone.layers.\1.attn.\2.\3'),
    (_TIMM_BLOCK + r'mlp\.fc1\.(weight|bias)', r'backbone.layers.\1.ffn.layers.0.0.\2'),
    (_TIMM_BLOCK + r'mlp\.fc2\.(weight|bias)', r'backbone.layers.\1.ffn.layers.1.\2'),
    (r'backbone\.norm\.(weight|bias)', r'backbone.ln1.\1'),
]


def unwrap_state_dict(ckpt: dict, keys: Sequence[str] = ('state_dict', 'model', 'module')
                      ) -> Dict[str, Tensor]:
    """Return the tensor dict of a checkpoint, looking inside the usual wrapper keys."""
    for key in keys:
        if isinstance(ckpt, dict) and key in ckpt and isinstance(ckpt[key], dict):
            return unwrap_state_dict(ckpt[key], keys)
    return ckpt


def rename_keys(state_dict: Dict[str, Tensor], rules: Iterable[Tuple[str, Optional[str]]],
                what: str) -> 'OrderedDict[str, Tensor]':
    """Rename every key by the first matching ``(regex, replacement)`` rule.

    A replacement of None drops the key. Keys that no rule matches raise :class:`ConversionError`
    listing them all, so a wrong checkpoint fails loudly instead of loading half its weights.
    """
    rules = [(re.compile(p), r) for p, r in rules]
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    unexpected: List[str] = []
    for key, value in state_dict.items():
        for pattern, repl in rules:
            if pattern.fullmatch(key):
                if repl is not None:
                    out[pattern.sub(repl, key)] = value
                break
        else:
            unexpected.append(key)
    if unexpected:
        shown = ', '.join(unexpected[:20]) + (' ...' if len(unexpected) > 20 else '')
        raise ConversionError(
            f'{len(unexpected)} key(s) of this checkpoint are not {what} keys: {shown}')
    return out


def check_complete(converted: Dict[str, Tensor], expected: Dict[str, Tensor], what: str) -> None:
    """Raise :class:`ConversionError` naming missing keys and shape mismatches, if any."""
    missing = sorted(set(expected) - set(converted))
    bad = sorted(k for k in set(expected) & set(converted)
                 if tuple(expected[k].shape) != tuple(converted[k].shape))
    if missing or bad:
        msg = [f'the converted checkpoint does not fit {what}:']
        if missing:
            msg.append(f'missing {len(missing)}: ' + ', '.join(missing[:20]))
        if bad:
            msg.append('shape mismatch: ' + ', '.join(
                f'{k} {tuple(converted[k].shape)} vs {tuple(expected[k].shape)}' for k in bad[:10]))
        raise ConversionError('; '.join(msg))


def save_converted(state_dict: Dict[str, Tensor], dst: str, src: str, converter: str,
                   **meta) -> None:
    """Write ``{'state_dict': ..., 'meta': ...}`` (loadable as ``load_from`` or ``init_cfg``
    Pretrained) to ``dst``, creating its folder, and say so."""
    import os
    import os.path as osp

    import torch
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save({'state_dict': dict(state_dict),
                'meta': dict(converted_from=osp.basename(src), converter=converter, **meta)}, dst)
    print(f'wrote {len(state_dict)} tensors to {dst}')


def load_official_checkpoint(path: str) -> Dict[str, Tensor]:
    """The tensor dict of an official checkpoint: a torch ``.pth`` or a detectron2 ``.pkl``
    (pickled dict of numpy arrays, which become tensors)."""
    import pickle

    import numpy as np
    import torch
    if path.endswith('.pkl'):
        with open(path, 'rb') as f:
            ckpt = pickle.load(f, encoding='latin1')
    else:
        ckpt = torch.load(path, map_location='cpu', weights_only=False)
    return {k: torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
            for k, v in unwrap_state_dict(ckpt).items()}


def check_against_config(converted: Dict[str, Tensor], config: str) -> None:
    """Check converted keys and shapes against the model that ``config`` builds (its backbone's
    pre-trained init disabled): missing, mismatched and extra keys raise :class:`ConversionError`."""
    import os.path as osp

    from mmmask.apis import build_model_from_cfg, load_config
    cfg = load_config(config, {'model.backbone.init_cfg': None})
    reference = build_model_from_cfg(cfg).state_dict()
    check_complete(converted, reference, osp.basename(config))
    extra = sorted(set(converted) - set(reference))
    if extra:
        raise ConversionError(f'{len(extra)} converted key(s) are not in the model of {config}: '
                              f'{", ".join(extra[:10])}')
