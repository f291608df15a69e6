"""ECO-M2F derived dataset (arXiv 2404.15244, step B → step C): per-image PQ at every exit."""
import json
import logging
import os.path as osp
from typing import Dict, List, Optional

from mmcv.transforms import BaseTransform
from mmengine.logging import print_log

from ..registry import TRANSFORMS


def load_exit_utilities(path: str) -> Dict[str, List[float]]:
    """Read a derived dataset written by ``tools/analysis_tools/eco_m2f_exit_pq.py``.

    Format: ``{"meta": {"exits": [2, ..., 6], ...}, "utilities": {"<img_id>": [q_2, ..., q_6]},
    "file_names": {"<img_id>": "<file stem>"}}`` (PQ as fractions); a bare ``{key: [q...]}``
    mapping is accepted too.
    """
    with open(path) as f:
        data = json.load(f)
    table = data.get('utilities', data) if isinstance(data, dict) else None
    if not isinstance(table, dict) or not table:
        raise ValueError(f'{path} holds no per-image exit utilities: write it with '
                         'tools/analysis_tools/eco_m2f_exit_pq.py CONFIG CKPT --out FILE')
    out = {str(k): [float(q) for q in v] for k, v in table.items()}
    for img_id, stem in (data.get('file_names') or {}).items():  # also by file stem
        if str(img_id) in out:
            out.setdefault(stem, out[str(img_id)])
    return out


@TRANSFORMS.register_module()
class LoadExitUtilities(BaseTransform):
    """Attach ``exit_utilities`` (per-exit PQs ``[q_2..q_6]`` of this image) to the results.

    Looked up by ``img_id`` (``key='img_id'``) or by the image file stem (``key='file_name'``).
    Add ``'exit_utilities'`` to ``PackDetInputs``' ``meta_keys`` so it reaches the data sample.

    Args:
        utilities_file: the derived dataset (JSON) of step B.
        key: ``'img_id'`` or ``'file_name'``.
    """

    def __init__(self, utilities_file: str, key: str = 'img_id') -> None:
        if key not in ('img_id', 'file_name'):
            raise ValueError(f"key={key!r} must be 'img_id' or 'file_name'")
        self.utilities_file = utilities_file
        self.key = key
        self._table: Optional[Dict[str, List[float]]] = None
        self._warned = False

    @property
    def table(self) -> Dict[str, List[float]]:
        if self._table is None:  # loaded lazily (configs build transforms before step B ran)
            self._table = load_exit_utilities(self.utilities_file)
        return self._table

    def transform(self, results: dict) -> dict:
        if self._table is None and not osp.isfile(self.utilities_file):
            # e.g. a config being checked before step B ran: samples pass through without
            # utilities, and gate training stops at its first iteration (ECOMask2FormerHead).
            if not self._warned:
                print_log(f'LoadExitUtilities: {self.utilities_file} does not exist (yet): write '
                          'it with tools/analysis_tools/eco_m2f_exit_pq.py CONFIG CKPT --out '
                          'FILE', logger='current', level=logging.WARNING)
                self._warned = True
            return results
        if self.key == 'img_id':
            k = str(results['img_id'])
        else:
            k = osp.splitext(osp.basename(results['img_path']))[0]
        if k not in self.table:
            raise KeyError(f'image {k} ({results.get("img_path")}) is not in the derived dataset '
                           f'{self.utilities_file}: re-run tools/analysis_tools/eco_m2f_exit_pq.py '
                           'on the training split used here')
        results['exit_utilities'] = self.table[k]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(utilities_file={self.utilities_file!r}, '
                f'key={self.key!r})')
