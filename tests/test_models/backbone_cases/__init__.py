"""Small instantiations of every registered mmmask backbone, for ``test_backbones.py``.

Each module here defines ``CASES = {name: dict(...)}`` for the backbones of one method (one file
per method, so methods never edit each other's entries). Keys of a case:

- ``kwargs``: small constructor kwargs (without ``type``);
- ``out_shapes``: output shapes without the batch axis for an input of ``input_size``, e.g.
  ``[(16, 16, 24), (32, 8, 12)]`` for feature maps or ``[(64, )]`` for a pooled/CLS output;
- ``input_size``: ``(H, W)`` of that input, default ``(64, 96)``;
- ``out_indices``: False when the backbone has no ``out_indices`` argument (default True);
- ``backward_input_size``: ``(H, W)`` for the backward test, default ``input_size``.
"""
import importlib
import pkgutil

CASES = {}
for _info in pkgutil.iter_modules(__path__):
    _module = importlib.import_module(f'{__name__}.{_info.name}')
    for _name, _case in _module.CASES.items():
        if _name in CASES:
            raise KeyError(f'backbone {_name} has two cases (in {_info.name} and elsewhere)')
        CASES[_name] = _case
