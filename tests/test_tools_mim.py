"""tools/analysis_tools/benchmark_mim.py runs end to end (a smoke test: no timing is asserted)."""
import os.path as osp

from conftest import ONE_THREAD, REPO, run_tool


def test_benchmark_mim_table(tmp_path):
    out = tmp_path / 'table.md'
    proc = run_tool(['analysis_tools/benchmark_mim.py',
                     osp.join(REPO, 'configs/hpm/hpm_vit-tiny-p8_1xb64-60e_toy-pretrain.py'),
                     osp.join(REPO, 'configs/gmml/gmml_vit-tiny-p8_1xb64-30e_toy-pretrain.py'),
                     '--batch-size', '2', '--rounds', '1', '--iters', '1', '--warmup', '1',
                     '--out', str(out)], cwd=str(tmp_path), env=ONE_THREAD, timeout=600)
    rows = [line for line in out.read_text().splitlines() if line.startswith('| ')][1:]
    names = [r.split('|')[1].strip() for r in rows]
    assert names == ['mae_vit-tiny-p8_1xb64-60e_toy-pretrain', 'hpm_vit-tiny-p8_1xb64-60e_toy-pretrain',
                     'gmml_vit-tiny-p8_1xb64-30e_toy-pretrain'], proc.stdout[-2000:]
    assert float(rows[0].split('|')[4]) == 1.0
    assert all(float(r.split('|')[3]) > 0 for r in rows)
