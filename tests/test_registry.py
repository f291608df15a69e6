"""mmmask modules resolve from mmseg, mmdet and mmpretrain configs through custom_imports."""
import subprocess
import sys

import pytest
from mmengine.config import Config
from mmengine.registry import DATASETS, OPTIM_WRAPPERS, DefaultScope, init_default_scope

import mmmask.registry as mmmask_registry
from mmmask.utils import register_all_modules
from mmmask.utils.checks import unknown_type_hint


def test_own_scope_and_parents():
    from mmengine import registry as root
    assert mmmask_registry.MODELS.scope == 'mmmask'
    assert mmmask_registry.MODELS.parent is root.MODELS
    assert mmmask_registry.DATASETS.parent is root.DATASETS
    assert 'mmmask' in root.MODELS.children


def test_every_location_imports():
    import importlib
    for registry in vars(mmmask_registry).values():
        for loc in getattr(registry, '_locations', None) or []:
            importlib.import_module(loc)


def test_register_all_modules_sets_scope():
    register_all_modules(init_default_scope=True)
    assert DefaultScope.get_current_instance().scope_name == 'mmmask'
    assert mmmask_registry.DATASETS.get('ToyData') is not None


@pytest.mark.parametrize('scope,reader,extra', [
    ('mmseg', 'mmseg.BaseSegDataset',
     dict(world='seg', reduce_zero_label=True,
          data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'))),
    ('mmdet', 'mmdet.CocoDataset',
     dict(world='coco', ann_file='annotations/instances_val.json', data_prefix=dict(img='val/'),
          metainfo=dict(classes=('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven',
                                 'eight', 'nine')))),
    ('mmpretrain', 'mmpretrain.CustomDataset', dict(world='cls', data_prefix='val')),
])
def test_resolution_from_upstream_config(tmp_path, scope, reader, extra):
    """A user's config in another scope builds `mmmask.X` once custom_imports names mmmask."""
    cfg = Config(dict(
        default_scope=scope,
        custom_imports=dict(imports=['mmmask.datasets', 'mmmask.engine']),
        dataset=dict(type='mmmask.ToyData', reader=reader, data_root=str(tmp_path / 'toy'),
                     **extra),
        optim_wrapper=dict(type='mmmask.CPUAmpOptimWrapper')))
    init_default_scope(cfg.default_scope)
    ds = DATASETS.build(cfg.dataset)
    assert type(ds).__module__.startswith(scope) and len(ds) > 0
    assert OPTIM_WRAPPERS.get(cfg.optim_wrapper['type']).__module__.startswith('mmmask')


def test_config_file_custom_imports(tmp_path):
    """Config.fromfile imports what custom_imports lists (upstream tools/train.py relies on it)."""
    path = tmp_path / 'user_cfg.py'
    path.write_text("default_scope = 'mmseg'\n"
                    "custom_imports = dict(imports=['mmmask.datasets'], allow_failed_imports=False)\n"
                    "dataset = dict(type='mmmask.ToyData', world='seq', reader='x')\n")
    code = ('import sys; from mmengine.config import Config; '
            f'Config.fromfile({str(path)!r}); '
            "print('mmmask.datasets.toy_data' in sys.modules, 'mmmask' in sys.modules)")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         cwd=str(tmp_path), check=True).stdout
    assert out.split() == ['True', 'True']


def test_unknown_type_hints():
    hint = unknown_type_hint('ToyData is not in the mmseg::dataset registry. Please check')
    assert "type='mmmask.ToyData'" in hint and 'custom_imports' in hint
    hint = unknown_type_hint('Foo is not in the mmseg::model registry.')
    assert 'prefix its scope' in hint
    assert unknown_type_hint('some other error') is None


def test_build_in_scope_ignores_the_ambient_scope():
    """mmmask builds its own modules in its scope even while an mmseg runner's scope is active."""
    from mmmask.registry import MODELS, build_in_scope
    init_default_scope('mmseg')
    with pytest.raises(KeyError):
        MODELS.build(dict(type='PPMAClsHead', num_classes=2, in_channels=8))  # resolves in mmseg
    head = build_in_scope(MODELS, dict(type='PPMAClsHead', num_classes=2, in_channels=8))
    assert type(head).__name__ == 'PPMAClsHead'
    assert DefaultScope.get_current_instance().scope_name == 'mmseg'
