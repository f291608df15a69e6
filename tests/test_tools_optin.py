"""tools/analysis_tools/optin_prune.py: CLI errors, and an end-to-end run on the toy ViT."""
import json
import os.path as osp
import sys

import pytest
import torch

from conftest import REPO, run_tool

sys.path.insert(0, osp.join(REPO, 'tests', 'test_models'))
CONFIG = osp.join(REPO, 'configs', 'optin', 'optin_r18-c32-vit4_1xb32-4e_toy-cls-64x64.py')


def _main():
    sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
    import optin_prune
    return optin_prune


def test_cli_rejects_bad_input(tmp_path):
    tool = _main()
    with pytest.raises(SystemExit, match='checkpoint .* not found'):
        tool.main([CONFIG, str(tmp_path / 'missing.pth')])
    with pytest.raises(SystemExit, match='flops-budget'):
        tool.main([CONFIG, 'none', '--flops-budget', '1.5', '--out-dir', str(tmp_path)])
    with pytest.raises(SystemExit, match='config .* not found'):
        tool.main([str(tmp_path / 'nope.py'), 'none'])


@pytest.mark.slow
def test_cli_prunes_trained_toy_vit(tmp_path_factory, toy_resnet18, tmp_path):
    from test_optin_toy import toy_vit_checkpoint
    ckpt = toy_vit_checkpoint(tmp_path_factory, toy_resnet18)
    work = osp.dirname(osp.dirname(ckpt))
    out = str(tmp_path / 'out')
    proc = run_tool(['analysis_tools/optin_prune.py', CONFIG, ckpt, '--flops-budget', '0.6',
                     '--calib-batches', '1', '--out-dir', out,
                     '--cfg-options', 'model.backbone.init_cfg=None'],
                    cwd=work, env=dict(OMP_NUM_THREADS='1'))
    assert 'OPTIN kept' in proc.stdout and 'metrics after' in proc.stdout
    with open(osp.join(out, 'optin_report.json')) as f:
        report = json.load(f)
    macs = report['macs']
    assert macs['prunable_ratio'] <= 0.6 and macs['prunable_after'] < macs['prunable_before']
    # whole-model MACs: the sliced model (mmengine count) is what the unit accounting predicts
    assert macs['model_physical'] == pytest.approx(macs['model_after'], rel=1e-9)
    assert report['physical']['max_abs_diff_vs_masked'] < 1e-4
    before = report['metrics_before']['accuracy/top1']
    after = report['metrics_after']['accuracy/top1']
    assert before > 60 and 10 < after <= before + 1
    with open(osp.join(out, 'optin_masks.json')) as f:
        masks = json.load(f)
    assert len(masks['blocks']) == 4 and masks['ratio'] <= 0.6

    # both checkpoints load: the masked one into the plain config, the sliced one via the helper
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    from mmmask.models.pruning.optin import load_optin_pruned
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        masked, sliced = MODELS.build(cfg.model).eval(), MODELS.build(cfg.model).eval()
    state = torch.load(osp.join(out, 'optin_masked.pth'), weights_only=False)['state_dict']
    masked.load_state_dict(state, strict=True)
    load_optin_pruned(sliced, osp.join(out, 'optin_pruned.pth'))
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(masked(x, mode='tensor'), sliced(x, mode='tensor'), atol=1e-4)
    assert sum(p.numel() for p in sliced.parameters()) < sum(
        p.numel() for p in masked.parameters())
