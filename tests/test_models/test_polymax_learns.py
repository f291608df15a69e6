"""PolyMaX learns every task on the toy NYU scenes: each single-task toy config and the multi-task
one beat the constant baselines (training-split mean depth, mean normal, majority class) scored
with the same evaluators (tools/analysis_tools/dense_baselines.py). Slow: trains on the CPU."""
import os.path as osp
import re

import pytest

from conftest import NO_WORKERS, REPO, final_metric, run_tool

CFG = osp.join(REPO, 'configs', 'polymax', 'polymax_r18-toy_1xb8-2k_toy-nyu-{}-64x64.py')
#: the runs are sequential and single-process, so both cores go to the one training process
TWO_THREADS = dict(OMP_NUM_THREADS='2')


def train(task: str, iters: int, workdir: str) -> str:
    proc = run_tool(['train.py', CFG.format(task), '--work-dir', osp.join(workdir, task),
                     '--cfg-options', f'train_cfg.max_iters={iters}',
                     f'train_cfg.val_interval={iters}', f'param_scheduler.1.end={iters}',
                     'randomness.seed=0', 'default_hooks.logger.interval=50',
                     f'default_hooks.checkpoint.interval={iters}'] + NO_WORKERS,
                    cwd=workdir, env=TWO_THREADS, timeout=2400)
    return proc.stdout


@pytest.fixture(scope='module')
def baseline(tmp_path_factory) -> dict:
    work = str(tmp_path_factory.mktemp('polymax_baseline'))
    proc = run_tool(['analysis_tools/dense_baselines.py', CFG.format('multitask')], cwd=work,
                    env=TWO_THREADS)
    line = re.search(r'Baseline metrics: (.*)', proc.stdout).group(1)
    return {k: float(v) for k, v in (item.split('=') for item in line.split(', '))}


@pytest.mark.slow
@pytest.mark.extended  # the multi-task test covers all three tasks in the default run
def test_semantic_beats_majority_class(workdir, baseline):
    out = train('semantic', 400, workdir)
    miou, aacc = final_metric(out, 'mIoU'), final_metric(out, 'aAcc')
    print(f"PolyMaX toy semantic: mIoU {miou} aAcc {aacc} (majority class: mIoU "
          f"{baseline['mIoU']} aAcc {baseline['aAcc']})")
    assert miou > baseline['mIoU'] + 5
    assert aacc > baseline['aAcc'] + 15


@pytest.mark.slow
@pytest.mark.extended  # the multi-task test covers all three tasks in the default run
def test_depth_beats_mean_depth(workdir, baseline):
    out = train('depth', 300, workdir)
    rmse, abs_rel = final_metric(out, 'rmse'), final_metric(out, 'abs_rel')
    print(f"PolyMaX toy depth: RMSE {rmse} AbsRel {abs_rel} (mean depth: RMSE {baseline['rmse']} "
          f"AbsRel {baseline['abs_rel']})")
    assert rmse < 0.6 * baseline['rmse']
    assert abs_rel < 0.5 * baseline['abs_rel']


@pytest.mark.slow
@pytest.mark.extended  # the multi-task test covers all three tasks in the default run
def test_normals_beat_mean_normal(workdir, baseline):
    out = train('normal', 300, workdir)
    mean, a11 = final_metric(out, 'normal_mean'), final_metric(out, r'normal_a11.25')
    print(f"PolyMaX toy normals: mean {mean} deg, {a11}% < 11.25 (mean normal: "
          f"{baseline['normal_mean']} deg, {baseline['normal_a11.25']}%)")
    assert mean < baseline['normal_mean'] - 10
    assert a11 > baseline['normal_a11.25'] + 20


@pytest.mark.slow
def test_multitask_model_learns_all_three(workdir, baseline):
    out = train('multitask', 300, workdir)
    got = {k: final_metric(out, k) for k in ('mIoU', 'rmse', 'normal_mean')}
    print(f'PolyMaX toy multi-task: {got} (baselines: mIoU {baseline["mIoU"]} RMSE '
          f'{baseline["rmse"]} normal mean {baseline["normal_mean"]})')
    assert got['mIoU'] > baseline['mIoU'] + 3
    assert got['rmse'] < 0.7 * baseline['rmse']
    assert got['normal_mean'] < baseline['normal_mean'] - 8
