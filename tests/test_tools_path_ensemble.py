"""tools/analysis_tools/path_ensemble_probe.py: per-path contribution and pruned-ensemble accuracy,
checked against a model that is actually pruned, and the CLI on the toy config's val set."""
import pytest
import importlib.util
import json
import os.path as osp

import torch
from mmpretrain.structures import DataSample

import mmmask.models  # noqa: F401
from mmmask.registry import MODELS

from conftest import REPO, run_tool

# mmpretrain classifiers built here resolve their default data preprocessor in the current scope
pytestmark = pytest.mark.usefixtures('mmpretrain_scope')

TOY = osp.join(REPO, 'configs', 'path_ensemble', 'path-ensemble-toy_1xb32-30e_toy-cls.py')
ARCH = dict(embed_dims=16, num_layers=2, num_heads=2, feedforward_channels=32)


def _tool():
    path = osp.join(REPO, 'tools', 'analysis_tools', 'path_ensemble_probe.py')
    spec = importlib.util.spec_from_file_location('path_ensemble_probe', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _batches(num=3, size=8):
    g = torch.Generator().manual_seed(0)
    return [dict(inputs=[torch.randint(0, 256, (3, 32, 32), generator=g, dtype=torch.uint8)
                         for _ in range(size)],
                 data_samples=[DataSample().set_gt_label(int(k))
                               for k in torch.randint(0, 4, (size, ), generator=g)])
            for _ in range(num)]


def _accuracy(model, batches):
    correct = seen = 0
    with torch.no_grad():
        for batch in batches:
            data = model.data_preprocessor(batch, False)
            pred = model(data['inputs'], mode='tensor').argmax(-1)
            labels = torch.cat([s.gt_label for s in data['data_samples']])
            correct += (pred == labels).sum().item()
            seen += labels.numel()
    return 100.0 * correct / seen


def test_probe_matches_really_pruned_models():
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='mmpretrain.ImageClassifier',
        backbone=dict(type='mmmask.PathEnsembleViT', arch=ARCH, img_size=32, patch_size=8,
                      prune_paths=['ffn.0']),
        head=dict(type='mmpretrain.LinearClsHead', num_classes=4, in_channels=16))).eval()
    with torch.no_grad():
        model.backbone.ensemble_scale.copy_(torch.tensor([1.0, 0.5, 2.0, 1.5, 0.8]))
    batches = _batches()
    result = _tool().probe(model, batches, custom=[['attn.1', 'embed']])
    assert result['num_images'] == 24
    assert result['paths'] == ['embed', 'attn.0', 'ffn.0', 'attn.1', 'ffn.1']
    assert result['configured_pruned'] == ['ffn.0']
    assert result['full'] == _accuracy(model, batches)
    for name in result['paths']:
        model.backbone.set_pruned(['ffn.0', name])
        assert result['leave_one_out'][name] == _accuracy(model, batches), name
    model.backbone.set_pruned(['ffn.0', 'attn.1', 'embed'])
    assert result['custom'][0]['accuracy'] == _accuracy(model, batches)
    # contributions are norm shares: a pruned path still has one (it is measured, not summed)
    assert all(v > 0 for v in result['contribution'].values())
    # leave-one-out of the already pruned path is the full model
    assert result['leave_one_out']['ffn.0'] == result['full']


def test_cli_on_the_toy_config(workdir):
    """The toy config at its initial weights ('none'), on one val batch of 64 images."""
    out = osp.join(workdir, 'probe.json')
    proc = run_tool(['analysis_tools/path_ensemble_probe.py', TOY, 'none', '--max-batches', '1',
                     '--prune', 'attn.2', 'ffn.2', '--out', out], cwd=workdir, timeout=600)
    assert 'full ensemble top-1' in proc.stdout and 'attn.2' in proc.stdout
    with open(out) as f:
        result = json.load(f)
    assert len(result['leave_one_out']) == 7 and result['num_images'] == 64
    assert result['custom'][0]['prune'] == ['attn.2', 'ffn.2']
    assert 0 <= result['full'] <= 100
