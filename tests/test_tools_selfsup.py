"""tools/analysis_tools/benchmark_selfsup.py runs end to end (a smoke test: no timing is asserted)."""
import os.path as osp

from conftest import ONE_THREAD, REPO, run_tool


def _rows(path):
    rows = [line for line in path.read_text().splitlines() if line.startswith('| ')][1:]
    return [[c.strip() for c in r.split('|')[1:-1]] for r in rows]


def test_benchmark_selfsup_table(tmp_path):
    out = tmp_path / 'table.md'
    run_tool(['analysis_tools/benchmark_selfsup.py',
              osp.join(REPO, 'configs/hpm/hpm_vit-tiny-p8_1xb64-60e_toy-pretrain.py'),
              osp.join(REPO, 'configs/gmml/gmml_vit-tiny-p8_1xb64-30e_toy-pretrain.py'),
              '--batch-size', '2', '--rounds', '1', '--iters', '1', '--warmup', '1',
              '--out', str(out)], cwd=str(tmp_path), env=ONE_THREAD, timeout=600)
    rows = _rows(out)
    assert [r[0] for r in rows] == ['mae_vit-tiny-p8_1xb64-60e_toy-pretrain',
                                    'hpm_vit-tiny-p8_1xb64-60e_toy-pretrain',
                                    'gmml_vit-tiny-p8_1xb64-30e_toy-pretrain']
    assert rows[0][3] == '(baseline)' and float(rows[0][4]) == 1.0
    assert rows[1][3] == rows[0][0] and rows[1][1] == '1 x 32'
    assert rows[2][1] == '1 x 32'  # GMML's pixel-space corruption keeps one view at 32 px
    assert all(float(r[2]) > 0 for r in rows)
