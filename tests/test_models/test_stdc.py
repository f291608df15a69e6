"""STDCNetS4 (PEM's STDC backbone): parity with the official code (fixture in
tests/data/parity/pem), the checkpoint converter and its CLI."""
import importlib.util
import json
import os.path as osp
import re
import sys

import pytest
import torch

from conftest import REPO, run_tool

from mmmask.models.backbones import STDCNetS4
from mmmask.models.converters import ConversionError, convert_stdc, stdc_arch_of

DATA = osp.join(osp.dirname(osp.dirname(__file__)), 'data', 'parity', 'pem')
OUTS = ('res2', 'res3', 'res4', 'res5')
CLI = 'model_converters/stdc2mmmask.py'


def fixture():
    return torch.load(osp.join(DATA, 'stdc_backbone.pt'), weights_only=True)


def official_keys(arch):
    """Random tensors with the names/shapes/dtypes of the full-size official D2STDCnet."""
    with open(osp.join(DATA, f'keys_backbone_{arch}.json')) as f:
        keys = json.load(f)
    g = torch.Generator().manual_seed(0)
    sd = {}
    for name, shape, dtype in keys['keys']:
        if name.startswith('x'):  # alias of a features.* tensor: the same object, as official
            continue
        sd[name] = (torch.randint(0, 100, shape, generator=g) if dtype == 'int64'
                    else torch.randn(shape, generator=g))
    for name, _, _ in keys['keys']:
        alias = re.fullmatch(r'x\d+\.0\.(\d+)\.(.+)', name)
        if alias:
            sd[name] = sd['features.{}.{}'.format(*alias.groups())]
    assert len(sd) == keys['num_keys']
    return sd, keys


def test_parity_with_official():
    fx = fixture()
    model = STDCNetS4(base=16, layers=[2, 2, 2]).eval()
    model.load_state_dict(convert_stdc(fx['state_dict']), strict=True)
    with torch.no_grad():
        outs = model(fx['inputs']['x'])
    assert len(outs) == 4
    for name, out in zip(OUTS, outs):
        torch.testing.assert_close(out, fx['outputs'][name], atol=1e-5, rtol=1e-4, msg=name)


def test_out_indices_select_outputs():
    fx = fixture()
    sd = convert_stdc(fx['state_dict'])
    model = STDCNetS4(base=16, layers=[2, 2, 2], out_indices=(0, 3)).eval()
    model.load_state_dict(sd, strict=True)
    with torch.no_grad():
        res2, res5 = model(fx['inputs']['x'])
    torch.testing.assert_close(res2, fx['outputs']['res2'], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(res5, fx['outputs']['res5'], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('arch', ['stdc1', 'stdc2'])
def test_converter_covers_full_size(arch):
    official, keys = official_keys(arch)
    converted = convert_stdc(official)
    model = STDCNetS4(arch=arch)
    ref = model.state_dict()
    assert set(converted) == set(ref)
    assert all(converted[k].shape == ref[k].shape for k in ref)
    assert sum(p.numel() for p in model.parameters()) == keys['num_parameters']
    assert stdc_arch_of(converted) == dict(base=64, layers=STDCNetS4.arch_zoo[arch], block_num=4)
    # every official tensor lands somewhere: the aliases equal their features.* twins
    assert len(converted) == sum(not k.startswith('x') for k in official)
    model.load_state_dict(converted, strict=True)


def test_converter_prefixes_and_classifier():
    """A detectron2 PEM model and an STDC-Seg ImageNet classifier give the same backbone."""
    official, _ = official_keys('stdc1')
    plain = convert_stdc(official)
    d2 = {'backbone.' + k: v for k, v in official.items()}
    d2['sem_seg_head.predictor.class_embed.weight'] = torch.zeros(151, 256)
    d2['criterion.empty_weight'] = torch.ones(151)
    imagenet = {'module.' + k: v for k, v in official.items()}
    imagenet.update({f'module.{k}': torch.zeros(1) for k in (
        'conv_last.conv.weight', 'conv_last.bn.weight', 'conv_last.bn.running_var',
        'conv_last.bn.num_batches_tracked', 'fc.weight', 'bn.weight', 'bn.bias',
        'bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked', 'linear.weight')})
    for sd in (d2, imagenet):
        out = convert_stdc(sd)
        assert list(out) == list(plain)
        assert all(out[k] is plain[k] for k in plain)


def test_converter_rejects_foreign_checkpoint():
    resnet = {'conv1.weight': torch.zeros(64, 3, 7, 7), 'bn1.weight': torch.zeros(64),
              'layer1.0.conv1.weight': torch.zeros(64, 64, 3, 3),
              'fc.weight': torch.zeros(1000, 512)}
    with pytest.raises(ConversionError, match='conv1.weight.*bn1.weight.*layer1.0.conv1.weight'):
        convert_stdc(resnet)
    only_head = {'fc.weight': torch.zeros(1000, 1024)}
    with pytest.raises(ConversionError, match='no .*weights'):
        convert_stdc(only_head)


def test_converter_checks_aliases_and_structure():
    official, _ = official_keys('stdc1')
    bad = dict(official)
    bad['x8.0.2.conv_list.0.conv.weight'] = torch.zeros_like(bad['x8.0.2.conv_list.0.conv.weight'])
    with pytest.raises(ConversionError, match=r'x8\.0\.2\.conv_list\.0\.conv\.weight'):
        convert_stdc(bad)
    gap = {k: v for k, v in official.items() if not re.match(r'(features|x8\.0)\.3\.', k)}
    with pytest.raises(ConversionError, match='not consecutive'):
        convert_stdc(gap)
    add = dict(official, **{'features.2.skip.0.weight': torch.zeros(64, 1, 3, 3)})
    with pytest.raises(ConversionError, match='block_type="add"'):
        convert_stdc(add)
    # only the aliases (no features.*) still convert
    aliases_only = {k: v for k, v in official.items() if k.startswith('x')}
    assert set(convert_stdc(aliases_only)) == set(convert_stdc(official))


def test_arch_errors():
    with pytest.raises(ValueError, match=r"'stdc3'.*\['stdc1', 'stdc2'\]"):
        STDCNetS4(arch='stdc3')
    with pytest.raises(ValueError, match='three positive ints'):
        STDCNetS4(layers=[2, 2])
    with pytest.raises(ValueError, match='out_indices'):
        STDCNetS4(base=16, layers=[1, 1, 1], out_indices=(4, ))


def test_frozen_stages_and_norm_eval():
    model = STDCNetS4(base=16, layers=[1, 1, 1], frozen_stages=1, norm_eval=True)
    model.train()
    for i in range(3):
        assert all(not p.requires_grad for p in model.stages[i].parameters()), i
        assert not model.stages[i].training
    assert all(p.requires_grad for p in model.stages[3].parameters())
    assert all(not m.training for m in model.modules()
               if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    assert model.stages[3].training


def test_cli_round_trip(workdir):
    """Fixture → CLI → init_cfg Pretrained reproduces the official outputs."""
    fx = fixture()
    src = osp.join(workdir, 'pem_stdc.pth')
    torch.save({'model': {'backbone.' + k: v for k, v in fx['state_dict'].items()}}, src)
    dst = osp.join(workdir, 'out', 'stdc_mmmask.pth')
    proc = run_tool([CLI, src, dst], cwd=workdir, timeout=300)
    assert 'wrote 174 tensors' in proc.stdout
    ckpt = torch.load(dst, weights_only=False)
    assert all(k.startswith('backbone.') for k in ckpt['state_dict'])
    assert ckpt['meta']['arch'] == dict(base=16, layers=[2, 2, 2], block_num=4)
    model = STDCNetS4(base=16, layers=[2, 2, 2], init_cfg=dict(
        type='Pretrained', checkpoint=dst, prefix='backbone.'))
    model.init_weights()
    model.eval()
    with torch.no_grad():
        outs = model(fx['inputs']['x'])
    for name, out in zip(OUTS, outs):
        torch.testing.assert_close(out, fx['outputs'][name], atol=1e-5, rtol=1e-4, msg=name)



def cli_main(monkeypatch, *args: str) -> int:
    """The converter's ``main()`` in this process (the subprocess start costs ~10 s here)."""
    spec = importlib.util.spec_from_file_location(
        'stdc2mmmask', osp.join(REPO, 'tools', 'model_converters', 'stdc2mmmask.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, 'argv', ['stdc2mmmask.py', *args])
    return module.main()


def test_cli_checks(tmp_path, monkeypatch, capsys):
    """ImageNet .tar (classifier dropped) verifies against --arch; misfits and bad input fail."""
    official, _ = official_keys('stdc2')
    official.update({'conv_last.conv.weight': torch.zeros(1024, 1024, 1, 1),
                     'fc.weight': torch.zeros(1024, 1024),
                     'linear.weight': torch.zeros(1000, 1024)})
    src = str(tmp_path / 'STDCNet1446M_76.47.tar')
    torch.save({'epoch': 300, 'state_dict': official}, src)
    dst = str(tmp_path / 'stdc2.pth')
    assert cli_main(monkeypatch, src, dst, '--arch', 'stdc2') == 0
    assert torch.load(dst, weights_only=False)['meta']['arch']['layers'] == [4, 5, 3]
    capsys.readouterr()

    assert cli_main(monkeypatch, src, dst, '--arch', 'stdc1') == 2
    err = capsys.readouterr().err
    assert 'extra' in err and 'stages.2.2' in err

    small = str(tmp_path / 'small.pth')
    torch.save(fixture()['state_dict'], small)
    assert cli_main(monkeypatch, small, dst, '--arch', 'stdc1') == 2
    assert 'shape mismatch' in capsys.readouterr().err

    bad = str(tmp_path / 'resnet.pth')
    torch.save({'state_dict': {'conv1.weight': torch.zeros(1),
                               'layer1.0.bn1.bias': torch.zeros(1)}}, bad)
    assert cli_main(monkeypatch, bad, dst) == 2
    err = capsys.readouterr().err
    assert 'conv1.weight' in err and 'layer1.0.bn1.bias' in err
