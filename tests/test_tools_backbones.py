"""tools/analysis_tools/benchmark_backbones.py: every entry builds (method and baseline), the FLOP
count sees attention on CPU, and the small entries run end to end (no timing is asserted)."""
import os.path as osp
import sys

import pytest
import torch
import torch.nn.functional as F

from conftest import ONE_THREAD, REPO, run_tool

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
import benchmark_backbones as bench  # noqa: E402


def test_cpu_attention_is_counted():
    class Attn(torch.nn.Module):
        def forward(self, q):
            return F.scaled_dot_product_attention(q, q, q)

    # QKᵀ and AV: 2 matmuls of 2·B·H·N·N·D FLOPs each
    assert bench.count_flops(Attn(), torch.randn(2, 3, 16, 8)) == 2 * (2 * 2 * 3 * 16 * 16 * 8)


@pytest.mark.parametrize('name', sorted(bench.PAIRS))
def test_every_entry_builds(name):
    from mmengine.registry import init_default_scope
    init_default_scope('mmmask')
    for role in ('model', 'baseline'):
        assert bench.params(bench.build(bench.PAIRS[name][role], 'cpu')) > 0


def test_benchmark_table(tmp_path):
    out = tmp_path / 'table.md'
    run_tool(['analysis_tools/benchmark_backbones.py', 'gmm-vit', 'hyena-vit-sd@32',
              '--batch-size', '1', '--rounds', '1', '--iters', '1', '--warmup', '0',
              '--out', str(out)], cwd=str(tmp_path), env=ONE_THREAD, timeout=600)
    rows = [line for line in out.read_text().splitlines() if line.startswith('| ')][1:]
    cells = [[c.strip() for c in r.split('|')[1:-1]] for r in rows]
    assert [c[0] for c in cells] == ['gmm-vit', 'hyena-vit-sd@32']
    gmm, hyena = cells
    assert 'params_net 696' in gmm[-1]  # GMM's parameter overhead over the plain ViT
    # the Hyena FLOPs include its FFT convolutions (more than the ViT's at 64 tokens)
    assert float(hyena[6]) > 1.0


def test_unknown_entry_is_an_error(tmp_path):
    proc = run_tool(['analysis_tools/benchmark_backbones.py', 'no-such-net'], cwd=str(tmp_path),
                    check=False)
    assert proc.returncode != 0 and 'choose from' in proc.stderr
