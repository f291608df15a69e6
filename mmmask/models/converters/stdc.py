"""Official STDC checkpoints (PEM's ``D2STDCnet``, STDC-Seg's ImageNet ``STDCNet813M/1446M``) to
:class:`mmmask.models.STDCNetS4`.

Official layout (``features`` is one ``nn.Sequential``): ``features.0``/``features.1`` are the two
stride-2 stem convs (``conv``/``bn``), ``features.2..`` the STDC modules in order
(``conv_list.i.{conv,bn}``, and ``avd_layer.{0,1}`` = depthwise stride-2 conv + BN in the first
module of each stage). Ours (mmseg's names): ``stages.0``/``stages.1``, then
``stages.{2,3,4}.j.layers.i`` and ``stages.S.j.downsample.{conv,bn}``. The stage of every module is
read from the checkpoint itself (a module with ``avd_layer`` starts a stage), so STDC1, STDC2 and
any other depth convert alike.

Quirks handled:

* ``x2./x4./x8./x16./x32.0.N.*`` re-register ``features.N.*`` (the same tensors under a second
  name, in both PEM and STDC-Seg). They are checked to equal their ``features`` twin and dropped.
* ``backbone.`` prefix (a detectron2 PEM checkpoint): the backbone is taken from it and the
  ``sem_seg_head.*``/``criterion.*`` entries are dropped (convert the head separately).
* ImageNet classifier keys (``conv_last``, ``fc``, ``bn``, ``linear``) are dropped: PEM builds the
  backbone with ``use_conv_last=False``.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from .common import ConversionError, rename_keys

_WHAT = 'official STDC (PEM D2STDCnet / STDC-Seg STDCNet) backbone'
_ALIAS = re.compile(r'x(?:2|4|8|16|32)\.0\.(\d+)\.(.+)')
_FEATURE = re.compile(r'features\.(\d+)\.(.+)')
_HEAD_PREFIXES = ('sem_seg_head.', 'criterion.')
_BN = r'(?:weight|bias|running_mean|running_var|num_batches_tracked)'
_CLASSIFIER_RULES: List[Tuple[str, Optional[str]]] = [
    (r'conv_last\.(?:conv\.weight|bn\.' + _BN + ')', None),
    (r'fc\.(?:weight|bias)', None),
    (r'bn\.' + _BN, None),
    (r'linear\.(?:weight|bias)', None),
]


def _strip_prefixes(state_dict: Dict[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """Drop a DataParallel ``module.`` prefix and take the backbone out of a detectron2 model."""
    sd = OrderedDict(state_dict)
    if sd and all(k.startswith('module.') for k in sd):
        sd = OrderedDict((k[len('module.'):], v) for k, v in sd.items())
    if not any(k.startswith('backbone.') for k in sd):
        return sd
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    for k, v in sd.items():
        if k.startswith('backbone.'):
            out[k[len('backbone.'):]] = v
        elif not k.startswith(_HEAD_PREFIXES):
            out[k] = v  # left for rename_keys to report
    return out


def _merge_aliases(sd: Dict[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """Fold the ``x2..x32`` stage aliases into ``features.*``, checking that twins are equal."""
    out: 'OrderedDict[str, Tensor]' = OrderedDict(
        (k, v) for k, v in sd.items() if not _ALIAS.fullmatch(k))
    differ = []
    for k, v in sd.items():
        m = _ALIAS.fullmatch(k)
        if m is None:
            continue
        twin = f'features.{m.group(1)}.{m.group(2)}'
        if twin not in out:
            out[twin] = v
        elif out[twin].shape != v.shape or not torch.equal(out[twin], v):
            differ.append(f'{k} != {twin}')
    if differ:
        raise ConversionError(
            f'{len(differ)} stage alias(es) of this checkpoint differ from the features.* tensors '
            f'they should duplicate: {", ".join(differ[:10])}')
    return out


def _block_rules(sd: Dict[str, Tensor]) -> List[Tuple[str, Optional[str]]]:
    """Renaming rules of ``features.N`` (N ≥ 2) → ``stages.S.J``, stages read from the keys."""
    parts: Dict[int, set] = {}  # module index -> its first-level children (conv_list, ...)
    for k in sd:
        m = _FEATURE.fullmatch(k)
        if m:
            parts.setdefault(int(m.group(1)), set()).add(m.group(2).split('.')[0])
    skips = sorted(n for n, children in parts.items() if 'skip' in children)
    if skips:
        raise ConversionError(
            f'features.{skips[0]}.skip.* belongs to an additive (block_type="add") STDC module; '
            'only the concatenating "cat" modules (PEM, the released STDC models) are supported')
    blocks = sorted(n for n in parts if n >= 2)
    starts = {n for n, children in parts.items() if 'avd_layer' in children}
    if blocks and blocks != list(range(2, blocks[-1] + 1)):
        raise ConversionError(f'the STDC modules of this checkpoint are not consecutive: '
                              f'features.N with N in {blocks}, expected 2..{blocks[-1]}')
    if blocks and blocks[0] not in starts:
        raise ConversionError('features.2 has no avd_layer.*: it should be the stride-2 module '
                              'that starts the first STDC stage')
    rules: List[Tuple[str, Optional[str]]] = []
    stage, j = 1, 0
    for n in blocks:
        stage, j = (stage + 1, 0) if n in starts else (stage, j + 1)
        ours = f'stages.{stage}.{j}.'
        rules += [(rf'features\.{n}\.conv_list\.(\d+)\.(.+)', ours + r'layers.\1.\2'),
                  (rf'features\.{n}\.avd_layer\.0\.(.+)', ours + r'downsample.conv.\1'),
                  (rf'features\.{n}\.avd_layer\.1\.(.+)', ours + r'downsample.bn.\1')]
    return rules


def convert_stdc(state_dict: Dict[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """Map an official STDC state dict onto :class:`~mmmask.models.STDCNetS4` keys.

    Accepts the bare backbone (``features.*`` + aliases), a detectron2 PEM model
    (``backbone.*`` + ``sem_seg_head.*``) or an STDC-Seg ImageNet classifier (``features.*`` +
    ``conv_last/fc/bn/linear``). Output keys have no prefix (``stages.*``). Unknown keys, alias
    twins that differ, additive modules or a broken module sequence raise ``ConversionError``.
    """
    sd = _merge_aliases(_strip_prefixes(state_dict))
    rules = [(r'features\.([01])\.(conv|bn)\.(.+)', r'stages.\1.\2.\3')]
    rules += _block_rules(sd) + _CLASSIFIER_RULES
    out = rename_keys(sd, rules, _WHAT)
    if not out:
        raise ConversionError(f'no {_WHAT} weights (features.*) in this checkpoint')
    return out


def stdc_arch_of(converted: Dict[str, Tensor]) -> dict:
    """``dict(base, layers, block_num)`` of a converted STDC state dict (for building a match)."""
    if 'stages.1.conv.weight' not in converted:
        raise ConversionError('not a converted STDC state dict: stages.1.conv.weight is missing')
    layers: Dict[int, int] = {}
    block_num = 0
    for k in converted:
        m = re.fullmatch(r'stages\.(\d+)\.(\d+)\.layers\.(\d+)\..+', k)
        if m:
            s, j, i = (int(g) for g in m.groups())
            layers[s] = max(layers.get(s, 0), j + 1)
            block_num = max(block_num, i + 1)
    return dict(base=int(converted['stages.1.conv.weight'].shape[0]),
                layers=[layers[s] for s in sorted(layers)], block_num=block_num)
