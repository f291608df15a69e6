"""Every config under configs/ (and projects/*/configs/) parses and builds.

Model configs: the model builds in the config's scope (pretrained weights switched off) and its
pipelines' transforms build. Dataloaders over the toy world also build and yield a sample; real
datasets are not downloaded here, so only their transforms are checked.
"""
import copy
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DATASETS, MODELS, TRANSFORMS, init_default_scope

from conftest import REPO

MODEL_CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p) + sorted(glob.glob(osp.join(REPO, 'projects', '*', 'configs', '*.py')))
DATASET_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', '_base_', 'datasets', '*.py')))


def _ids(paths):
    return [osp.relpath(p, REPO) for p in paths]


def _strip_pretrained(cfg):
    """Remove every init_cfg/pretrained that would fetch weights (configs point at real files)."""
    if isinstance(cfg, dict):
        for key in list(cfg):
            if key == 'pretrained' or (key.endswith('_checkpoint') and isinstance(cfg[key], str)):
                cfg[key] = None
            elif key == 'init_cfg' and isinstance(cfg[key], dict) and \
                    cfg[key].get('type') == 'Pretrained':
                cfg[key] = None
            else:
                _strip_pretrained(cfg[key])
    elif isinstance(cfg, list):
        for item in cfg:
            _strip_pretrained(item)


def _check_dataloaders(cfg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # toy data is linked under ./data/toy
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        ds_cfg = copy.deepcopy(loader['dataset'])
        if 'ToyData' in str(ds_cfg.get('type')):
            dataset = DATASETS.build(ds_cfg)
            assert len(dataset) > 0
            sample = dataset[0]
            assert sample is not None and 'inputs' in sample
        else:
            for t in ds_cfg.get('pipeline', []):
                TRANSFORMS.build(t)


@pytest.mark.parametrize('path', MODEL_CONFIGS, ids=_ids(MODEL_CONFIGS))
def test_model_config_builds(path, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(REPO)  # projects.* imports
    cfg = Config.fromfile(path)
    init_default_scope(cfg.get('default_scope', 'mmmask'))
    model_cfg = copy.deepcopy(cfg.model)
    _strip_pretrained(model_cfg)
    model = MODELS.build(model_cfg)
    model.init_weights()
    assert sum(p.numel() for p in model.parameters()) > 0
    _check_dataloaders(cfg, tmp_path, monkeypatch)


@pytest.mark.parametrize('path', DATASET_CONFIGS, ids=_ids(DATASET_CONFIGS))
def test_dataset_config_builds(path, tmp_path, monkeypatch):
    cfg = Config.fromfile(path)
    reader = str(cfg.get('dataset_type', '') or cfg.train_dataloader.dataset.type)
    if '.' in reader:
        scope = reader.split('.')[0]
    else:  # an unprefixed upstream type: the scope whose registry has it
        scope = next(s for s in ('mmseg', 'mmdet', 'mmpretrain')
                     if DATASETS.get(f'{s}.{reader}') is not None)
    init_default_scope(scope)
    _check_dataloaders(cfg, tmp_path, monkeypatch)


METHOD_DIRS = sorted(d for d in glob.glob(osp.join(REPO, 'configs', '*')) if osp.isdir(d)
                     and not d.endswith('_base_'))


@pytest.mark.parametrize('folder', METHOD_DIRS, ids=_ids(METHOD_DIRS))
def test_method_folder_is_documented(folder):
    """README + metafile per method folder; the metafile's configs exist; model-index lists it."""
    import yaml
    assert osp.isfile(osp.join(folder, 'README.md'))
    meta_path = osp.join(folder, 'metafile.yml')
    with open(meta_path) as f:
        meta = yaml.safe_load(f)
    assert meta['Collections'] and meta['Models']
    for model in meta['Models']:
        assert osp.isfile(osp.join(REPO, model['Config'])), model['Config']
    with open(osp.join(REPO, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    assert osp.relpath(meta_path, REPO) in index['Import']
