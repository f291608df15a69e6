"""The PPMA analysis tools: the mask/attention benchmark and the mask visualisation."""
import importlib.util
import json
import os.path as osp
from types import ModuleType

import cv2
import numpy as np
import pytest
import torch

from conftest import ONE_THREAD, REPO, run_tool

from mmmask.models.backbones.ppma import PolylinePathAttention, raster_rope

VIS = 'visualization/vis_ppma_mask.py'


def _load_tool(rel: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(rel))[0],
                                                  osp.join(REPO, 'tools', rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_quick(workdir):
    out = osp.join(workdir, 'result.json')
    proc = run_tool(['analysis_tools/ppma_benchmark.py', '--quick', '--device', 'cpu',
                     '--out', out], cwd=workdir, timeout=300)
    assert '[a] mask construction' in proc.stdout and '[c] PPMA-T backbone' in proc.stdout
    with open(out) as f:
        result = json.load(f)
    assert set(result) == {'env', 'mask_construction', 'whole_attention', 'backbone'}
    assert result['env']['device'] == 'cpu' and result['env']['quick']

    mask = result['mask_construction']
    for key in ('ours', 'materialised', 'naive'):
        assert mask[key]['latency_ms'] > 0 and mask[key]['peak_mib'] > 0, key
    assert mask['max_abs_diff_ours_vs_materialised'] < 1e-4
    assert mask['naive']['max_abs_diff_vs_ours'] < 1e-4
    assert mask['naive']['grid'] == [8, 8]
    # one N×N map for ours; the repeated copies for the materialised construction
    assert mask['materialised']['peak_mib'] > 2 * mask['ours']['peak_mib']

    attn = result['whole_attention']
    for key in ('ours_whole', 'materialised_whole', 'ours_chunk'):
        assert attn[key]['latency_ms'] > 0 and attn[key]['peak_mib'] > 0, key
    assert attn['max_abs_diff_ours_vs_materialised'] < 1e-4
    assert attn['peak_ratio_ours_vs_materialised'] < 1
    assert isinstance(attn['target_met'], bool)

    rows = result['backbone']
    assert [r['variant'] for r in rows] == ['tiny', 'all-whole', 'all-chunk']
    assert all(r['size'] == 64 and r['latency_ms'] > 0 and r['peak_mib'] > 0 for r in rows)


def _image(workdir: str) -> str:
    img = np.zeros((90, 120, 3), np.uint8)
    cv2.circle(img, (60, 45), 30, (0, 200, 255), -1)
    cv2.rectangle(img, (5, 5), (40, 30), (255, 0, 0), -1)
    path = osp.join(workdir, 'scene.png')
    cv2.imwrite(path, img)
    return path


def _check_pngs(proc, out_dir: str, stem: str, size: int) -> None:
    suffixes = ('mask', 'mask_T', 'attn', 'panel')
    for suffix in suffixes:
        path = osp.join(out_dir, f'{stem}_{suffix}.png')
        assert f'wrote {path}' in proc.stdout
        png = cv2.imread(path)
        assert png is not None, path
        if suffix == 'panel':
            assert png.shape[0] > size and png.shape[1] > 4 * size
        else:
            assert png.shape == (size, size, 3)


@pytest.mark.parametrize('stage,block,head,query,mode,grid', [
    (0, 1, 2, (5, 9), 'chunk', 16),
    (2, 3, 7, (1, -1), 'whole', 4),
])
def test_vis_arch(workdir, stage, block, head, query, mode, grid):
    image, out_dir = _image(workdir), osp.join(workdir, 'vis')
    proc = run_tool([VIS, image, '--arch', 'tiny', '--stage', str(stage), '--block', str(block),
                     '--head', str(head), '--query', *map(str, query), '--out-dir', out_dir,
                     '--size', '64', '--device', 'cpu'], cwd=workdir, env=ONE_THREAD,
                    timeout=300)
    assert f"mode '{mode}', token grid {grid}x{grid}" in proc.stdout
    r, c = query[0] % grid, query[1] % grid
    _check_pngs(proc, out_dir, f'scene_s{stage}b{block}h{head}_q{r}-{c}', 64)


def test_vis_config(workdir):
    """A segmentor config (mmseg scope): the backbone is taken from the built model."""
    cfg = osp.join(REPO, 'configs', 'ppma', 'upernet_ppma-toy_1xb8-2k_toy-seg-64x64.py')
    image, out_dir = _image(workdir), osp.join(workdir, 'vis')
    proc = run_tool([VIS, image, '--config', cfg, '--stage', '2', '--block', '1', '--head', '3',
                     '--query', '2', '1', '--out-dir', out_dir, '--size', '64', '--device', 'cpu'],
                    cwd=workdir, env=ONE_THREAD, timeout=300)
    assert "mode 'whole', token grid 4x4, 4 heads" in proc.stdout
    _check_pngs(proc, out_dir, 'scene_s2b1h3_q2-1', 64)


def test_vis_bad_query(workdir):
    proc = run_tool([VIS, _image(workdir), '--arch', 'tiny', '--stage', '3', '--block', '0',
                     '--head', '0', '--query', '2', '0', '--out-dir', 'vis', '--size', '64'],
                    cwd=workdir, env=ONE_THREAD, timeout=300, check=False)
    assert proc.returncode != 0 and 'out of range (0..1)' in proc.stderr


def _one_hot_attention(attn: PolylinePathAttention, q, k, bias, hh: int, ww: int):
    """The module's operator applied to one-hot values: its full ``(H, W, heads, N)`` weights."""
    heads, d = q.shape[1], q.shape[-1]
    n = hh * ww
    eye = torch.eye(n + (-n) % d)[:n]
    op = attn._whole if attn.mode == 'whole' else attn._chunk
    parts = []
    for g in range(0, eye.shape[1], d):
        v = eye[:, g:g + d].reshape(1, 1, hh, ww, d).expand(1, heads, hh, ww, d).contiguous()
        parts.append(op(q, k, v, bias).view(hh, ww, heads, d))
    return torch.cat(parts, -1)[..., :n]


@pytest.mark.parametrize('mode', ['whole', 'chunk'])
def test_vis_maps_match_module(mode):
    """The O(N) per-query mask rows and attention weights equal the module's N×N ones."""
    vis = _load_tool(VIS)
    torch.manual_seed(0)
    hh, ww, dims, heads = 5, 7, 32, 4
    attn = PolylinePathAttention(dims, heads, mode).eval()
    with torch.no_grad():
        attn.path.A_log.fill_(1.0)  # strong decays, so the mask matters
        x = torch.randn(1, hh, ww, dims)
        rope = raster_rope((hh, ww), dims // heads)
        bias = attn.path(x)
        q, k = vis._heads_qk(attn, x, rope)
        full = _one_hot_attention(attn, q[None], k[None], bias, hh, ww)
        for head in range(heads):
            for r, c in [(0, 0), (2, 3), (4, 6), (1, 5)]:
                for transpose in (False, True):
                    dense = bias.dense(transpose)[0, head, r * ww + c].view(hh, ww)
                    torch.testing.assert_close(vis.mask_row(bias, head, r, c, transpose), dense)
                weights = vis.query_attention(attn, x, rope, bias, head, r, c)
                torch.testing.assert_close(weights.flatten(), full[r, c, head])
                assert abs(weights.sum().item() - 1) < 1e-5
