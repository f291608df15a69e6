"""Cost of PPMA's polyline path mask: factorised broadcasting vs a materialised N×N copy.

    python tools/analysis_tools/ppma_benchmark.py [--device auto|cpu|cuda] [--grid 64 [64]]
        [--heads 8] [--dims 256] [--sizes 224 512] [--repeat 3] [--out result.json] [--quick]

Three sections, printed as tables and written to ``--out`` as JSON:

a) **Mask construction** for one token grid (batch 1): the mask ``M`` of
   :class:`~mmmask.models.layers.PolylinePathDecay` built (i) our way: per-axis segment sums,
   then ``PolylinePathBias.apply`` on a zero logits tensor (the stand-in for ``QKᵀ``, allocated
   before the measurement, as the logits exist anyway); (ii) the official code's way: both
   factors repeated to N×N, added, and copied into raster order by ``permute(...).contiguous()``;
   (iii) naively, by summing the decays of the cells on every query→key L-shaped path
   (O(N²·(H+W)); run only on grids up to ``--naive-max-grid``, by default 24×24, together with
   our way on that grid for comparison). The max abs differences (i)-(ii) and (iii)-(i) are
   reported.
b) **Whole-mode attention** at the same grid: :class:`PolylinePathAttention` (``mode='whole'``)
   vs an official-style forward with the same weights that materialises ``M`` and computes
   ``[½·softmax(QKᵀ+M) + ½·softmax(QKᵀ+Mᵀ)] V`` in one expression, plus the same weights in
   ``mode='chunk'``. The target: our peak memory at a 64×64 grid is at most half of the
   materialised one.
c) **Full backbone**: PPMA-T forward (eval, no grad, batch 1) at each ``--sizes``, with the
   published modes and with every stage set to ``'whole'`` / ``'chunk'``.

Peak memory is the peak of *extra* memory the measured call allocates (its inputs, weights and
pre-allocated tensors are excluded; its output is included):

* CUDA: ``torch.cuda.max_memory_allocated()`` minus ``torch.cuda.memory_allocated()`` before the
  call, after ``reset_peak_memory_stats()``.
* CPU, ``--cpu-memory profiler`` (the default when available): the call runs once under
  ``torch.profiler.profile(profile_memory=True)``; every allocation and free of torch's CPU
  allocator is recorded with its size and time stamp, and the maximum of their running sum is the
  peak. This counts exactly the bytes torch tensors hold, independent of what the C allocator or
  the OS do with freed pages and of other processes on the machine. (It reads the profiler's
  event tree, an internal API; if a torch release changes it, ``auto`` falls back to ``rss``.)
* CPU, ``--cpu-memory rss``: each case runs in a fresh spawned process that builds its inputs,
  resets the resident-set high-water mark (Linux ``/proc/self/clear_refs``; elsewhere it reads
  ``ru_maxrss``), runs the call and reads the high-water mark again; its growth over the resident
  size before the call is the peak. Large tensors are ``mmap``-ed and returned to the OS when
  freed, so this tracks simultaneously live big tensors well, but it is coarse for small ones
  (allocator caching, page granularity) and each case pays a process start.

Latency is the median wall time of ``--repeat`` calls after ``--warmup`` calls, without the
profiler. Cases whose estimated N×N working set exceeds ``--max-gib`` are skipped and reported.
"""
import argparse
import json
import math
import multiprocessing as mp
import platform
import resource
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from mmmask.models.backbones.ppma import PPMA, PolylinePathAttention, apply_rope, raster_rope
from mmmask.models.layers.attention_bias import PolylinePathDecay
from mmmask.utils.checks import check_device

MiB = 2**20
GiB = 2**30
#: the published modes of PPMA-T and the two uniform variants benchmarked in section c.
BACKBONE_VARIANTS = {
    'tiny': list(PPMA.arch_zoo['tiny']['modes']),
    'all-whole': ['whole'] * 4,
    'all-chunk': ['chunk'] * 4,
}

# --------------------------------------------------------------------------------------------
# Baselines: the official construction of the dense mask and its whole-mode attention, and a
# naive per-path construction.
# --------------------------------------------------------------------------------------------


def official_segsum(a: Tensor) -> Tensor:
    """1-D path decay ``S[i, j] = a[min+1] + ... + a[max]`` as the official code builds it.

    The lower triangle and the strictly upper triangle come from two differences of one cumulative
    sum, each masked to its triangle, and are added.
    """
    n = a.shape[-1]
    c = torch.cumsum(a, dim=-1)
    lower_mask = torch.ones(n, n, dtype=torch.bool, device=a.device).tril()
    upper_mask = torch.ones(n, n, dtype=torch.bool, device=a.device).triu(1)
    lower = (c[..., :, None] - c[..., None, :]).masked_fill(~lower_mask, 0.0)
    upper = (c[..., None, :] - c[..., :, None]).masked_fill(~upper_mask, 0.0)
    return lower + upper


def materialise_mask(row: Tensor, col: Tensor) -> Tensor:
    """The dense ``(B, heads, N, N)`` mask from the factors, with the official code's copies.

    ``row``: ``(B, H, heads, W, W)``; ``col``: ``(B, W, heads, H, H)``. Both are repeated to the
    full ``(B, heads, H, H, W, W)`` size, added, and permuted into raster order by a contiguous
    copy; as in the official function, the repeated tensors stay referenced until it returns.
    """
    b, hh, heads, ww, _ = row.shape
    n = hh * ww
    row_full = row.permute(0, 2, 1, 3, 4).contiguous()  # (B, heads, H, W, W)
    col_full = col.permute(0, 2, 3, 4, 1).contiguous()  # (B, heads, H, H, W)
    row_full = row_full.unsqueeze(3).repeat(1, 1, 1, hh, 1, 1)  # (B, heads, H, H, W, W)
    col_full = col_full.unsqueeze(-2).repeat(1, 1, 1, 1, ww, 1)  # (B, heads, H, H, W, W)
    mask = row_full + col_full  # indexed [r1, r2, i, j]
    mask = mask.permute(0, 1, 2, 4, 3, 5).contiguous()  # [r1, i, r2, j]
    return mask.view(b, heads, n, n)


def official_mask(decay: PolylinePathDecay, x: Tensor) -> Tensor:
    """Decays → official segment sums → materialised ``(B, heads, N, N)`` mask."""
    alpha, beta = decay.decays(x)  # (B, H, W, heads) each
    row = official_segsum(alpha.permute(0, 1, 3, 2).contiguous())  # (B, H, heads, W, W)
    col = official_segsum(beta.permute(0, 2, 3, 1).contiguous())  # (B, W, heads, H, H)
    return materialise_mask(row, col)


def naive_path_mask(alpha: Tensor, beta: Tensor) -> Tensor:
    """``M`` by summing, for every query→key pair, the decays of the cells on its L-shaped path.

    ``alpha``, ``beta``: ``(B, H, W, heads)`` row/column log-decays. For query ``(r1, i)`` and key
    ``(r2, j)`` the path runs along row ``r1`` from column ``i`` to ``j`` (cells strictly after
    ``min(i, j)`` up to ``max(i, j)``, weighted by α) and then along column ``j`` from row ``r1`` to
    ``r2`` (weighted by β). One query at a time, all keys at once: O(N²·(H+W)) work.
    """
    b, hh, ww, heads = alpha.shape
    n = hh * ww
    dev = alpha.device
    a = alpha.permute(0, 3, 1, 2).float()  # (B, heads, H, W)
    rows = torch.arange(hh, device=dev)
    cols = torch.arange(ww, device=dev)
    key_r = rows.repeat_interleave(ww)  # (N,) key row
    key_c = cols.repeat(hh)  # (N,) key column
    # β of the key's column, for every key: (B, heads, N, H)
    beta_key_col = beta.permute(0, 3, 1, 2).float()[..., key_c].transpose(-1, -2)
    out = a.new_empty(b, heads, n, n)
    for q in range(n):
        r1, i = divmod(q, ww)
        lo, hi = key_c.clamp(max=i), key_c.clamp(min=i)
        on_row = (cols > lo[:, None]) & (cols <= hi[:, None])  # (N, W): cells of the row leg
        lo, hi = key_r.clamp(max=r1), key_r.clamp(min=r1)
        on_col = (rows > lo[:, None]) & (rows <= hi[:, None])  # (N, H): cells of the column leg
        out[:, :, q] = ((a[:, :, r1, None, :] * on_row).sum(-1) +
                        (beta_key_col * on_col).sum(-1))
    return out


def official_whole_attention(attn: PolylinePathAttention, x: Tensor,
                             rope: Tuple[Tensor, Tensor]) -> Tensor:
    """Whole-mode PPMA attention the official way, with the weights of ``attn``.

    The mask is materialised (:func:`official_mask`) and both directions are averaged in a single
    expression, ``½·softmax(QKᵀ+M) + ½·softmax(QKᵀ+Mᵀ)``, before multiplying by V.
    """
    b, hh, ww, _ = x.shape
    heads = attn.num_heads
    sin, cos = rope
    mask = official_mask(attn.path, x)
    q = attn.q_proj(x)
    k = attn.k_proj(x) * attn.scale
    v = attn.v_proj(x)
    lepe = attn.lepe(v)
    q = apply_rope(q.view(b, hh, ww, heads, -1).permute(0, 3, 1, 2, 4), sin, cos).flatten(2, 3)
    k = apply_rope(k.view(b, hh, ww, heads, -1).permute(0, 3, 1, 2, 4), sin, cos).flatten(2, 3)
    v = v.view(b, hh, ww, heads, -1).permute(0, 3, 1, 2, 4).flatten(2, 3)
    qk = q @ k.transpose(-1, -2)
    weights = (0.5 * torch.softmax(qk + mask, -1) +
               0.5 * torch.softmax(qk + mask.permute(0, 1, 3, 2), -1))
    out = (weights @ v).transpose(1, 2).reshape(b, hh, ww, -1)
    return attn.out_proj(out + lepe)


# --------------------------------------------------------------------------------------------
# Benchmark cases: each builder makes its (seeded) inputs and returns the call to measure, so a
# case can be rebuilt identically in a fresh process for the rss memory method.
# --------------------------------------------------------------------------------------------


def _decay_inputs(p: dict, device: str) -> Tuple[PolylinePathDecay, Tensor]:
    torch.manual_seed(0)
    decay = PolylinePathDecay(p['dims'], p['heads']).to(device).eval()
    x = torch.randn(p['batch'], *p['grid'], p['dims'], device=device)
    return decay, x


def build_mask_ours(p: dict, device: str) -> Callable[[], Tensor]:
    decay, x = _decay_inputs(p, device)
    n = p['grid'][0] * p['grid'][1]
    logits = torch.zeros(p['batch'], p['heads'], n, n, device=device)
    return lambda: decay(x).apply(logits)


def build_mask_materialised(p: dict, device: str) -> Callable[[], Tensor]:
    decay, x = _decay_inputs(p, device)
    return lambda: official_mask(decay, x)


def build_mask_naive(p: dict, device: str) -> Callable[[], Tensor]:
    decay, x = _decay_inputs(p, device)
    return lambda: naive_path_mask(*decay.decays(x))


def _attention_inputs(p: dict, device: str, mode: str = 'whole'):
    torch.manual_seed(0)
    attn = PolylinePathAttention(p['dims'], p['heads'], 'whole')
    if mode != 'whole':
        other = PolylinePathAttention(p['dims'], p['heads'], mode)
        other.load_state_dict(attn.state_dict())
        attn = other
    attn = attn.to(device).eval()
    x = torch.randn(p['batch'], *p['grid'], p['dims'], device=device)
    rope = raster_rope(tuple(p['grid']), attn.head_dims, device)
    return attn, x, rope


def build_attn_ours_whole(p: dict, device: str) -> Callable[[], Tensor]:
    attn, x, rope = _attention_inputs(p, device)
    return lambda: attn(x, rope)


def build_attn_materialised_whole(p: dict, device: str) -> Callable[[], Tensor]:
    attn, x, rope = _attention_inputs(p, device)
    return lambda: official_whole_attention(attn, x, rope)


def build_attn_ours_chunk(p: dict, device: str) -> Callable[[], Tensor]:
    attn, x, rope = _attention_inputs(p, device, 'chunk')
    return lambda: attn(x, rope)


def build_backbone(p: dict, device: str) -> Callable[[], Any]:
    torch.manual_seed(0)
    model = PPMA(arch=dict(PPMA.arch_zoo['tiny'], modes=p['modes'])).to(device).eval()
    img = torch.randn(1, 3, p['size'], p['size'], device=device)
    return lambda: model(img)


CASES: Dict[str, Callable[[dict, str], Callable[[], Any]]] = {
    'mask_ours': build_mask_ours,
    'mask_materialised': build_mask_materialised,
    'mask_naive': build_mask_naive,
    'attn_ours_whole': build_attn_ours_whole,
    'attn_materialised_whole': build_attn_materialised_whole,
    'attn_ours_chunk': build_attn_ours_chunk,
    'backbone': build_backbone,
}

# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------


def _sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def time_call(fn: Callable[[], Any], device: str, warmup: int, repeat: int) -> float:
    """Median latency in ms of ``repeat`` calls after ``warmup`` calls."""
    times = []
    with torch.no_grad():
        for i in range(warmup + repeat):
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def _walk(nodes) -> Any:
    for node in nodes:
        yield node
        yield from _walk(node.children)


def profiler_peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak of the running sum of torch CPU allocations (bytes) while ``fn`` runs."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [e for e in _walk(prof.profiler.kineto_results.experimental_event_tree())
              if e.tag == _EventType.Allocation and str(e.extra_fields.device) == 'cpu']
    running = peak = 0
    for e in sorted(events, key=lambda e: e.start_time_ns):
        running += e.extra_fields.alloc_size
        peak = max(peak, running)
    return peak


def profiler_available() -> bool:
    """Whether the profiler's allocation events can be read in this torch build."""
    try:
        return profiler_peak_bytes(lambda: torch.empty(1024, 1024).add_(1)) >= 4 * MiB
    except Exception:  # an internal API: treat any change as unavailable
        return False


def _proc_status_kib(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise KeyError(field)


def _rss_worker(case: str, params: dict) -> int:
    """In a fresh process: build the case, then its peak resident-set growth over one call (bytes).

    On Linux the high-water mark is reset first (``/proc/self/clear_refs``), so the peak is that
    of the call and not of the imports; elsewhere the growth of ``ru_maxrss`` is used.
    """
    torch.set_num_threads(params.get('threads', torch.get_num_threads()))
    fn = CASES[case](params, 'cpu')
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # reset VmHWM to the current VmRSS
        before = _proc_status_kib('VmRSS')
        high_water = lambda: _proc_status_kib('VmHWM')  # noqa: E731
    except (OSError, KeyError):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        high_water = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # noqa: E731
    with torch.no_grad():
        fn()
    kib = 1 if sys.platform != 'darwin' else 1 / 1024  # ru_maxrss is in bytes on macOS
    return int((high_water() - before) * 1024 * kib)


def peak_bytes(case: str, params: dict, fn: Callable[[], Any], device: str, method: str) -> int:
    """Peak extra memory of one call of ``fn`` (see the module docstring for the methods)."""
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with torch.no_grad():
            fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    if method == 'profiler':
        return profiler_peak_bytes(fn)
    with mp.get_context('spawn').Pool(1) as pool:
        return pool.apply(_rss_worker, (case, dict(params, threads=torch.get_num_threads())))


class Runner:
    """Builds and measures cases with shared settings."""

    def __init__(self, device: str, warmup: int, repeat: int, memory_method: str) -> None:
        self.device, self.warmup, self.repeat = device, warmup, repeat
        self.memory_method = memory_method

    def measure(self, case: str, params: dict, repeat: Optional[int] = None) -> dict:
        fn = CASES[case](params, self.device)
        latency = time_call(fn, self.device, self.warmup, repeat or self.repeat)
        peak = peak_bytes(case, params, fn, self.device, self.memory_method)
        del fn
        if self.device == 'cuda':
            torch.cuda.empty_cache()
        return dict(latency_ms=latency, peak_mib=peak / MiB)

    def output(self, case: str, params: dict) -> Tensor:
        """One call's output (for the agreement checks)."""
        with torch.no_grad():
            return CASES[case](params, self.device)()


def max_abs_diff(a: Tensor, b: Tensor) -> float:
    return (a.float() - b.float()).abs().max().item()


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def map_mib(batch: int, heads: int, grid: Sequence[int]) -> float:
    """Size of one float32 ``(B, heads, N, N)`` tensor in MiB."""
    n = grid[0] * grid[1]
    return 4 * batch * heads * n * n / MiB


def section_mask(runner: Runner, args) -> dict:
    p = dict(grid=list(args.grid), heads=args.heads, dims=args.dims, batch=1)
    unit = map_mib(1, args.heads, args.grid)
    res: Dict[str, Any] = dict(grid=p['grid'], heads=args.heads, batch=1, map_mib=unit)
    if 4 * unit * MiB > args.max_gib * GiB:
        res['skipped'] = f'materialised construction needs ~{4 * unit / 1024:.1f} GiB > --max-gib'
        return res
    res['ours'] = runner.measure('mask_ours', p)
    res['materialised'] = runner.measure('mask_materialised', p)
    res['max_abs_diff_ours_vs_materialised'] = max_abs_diff(
        runner.output('mask_ours', p), runner.output('mask_materialised', p))
    naive_grid = [min(g, args.naive_max_grid) for g in args.grid]
    pn = dict(p, grid=naive_grid)
    res['naive'] = dict(
        grid=naive_grid,
        note=f'O(N^2 (H+W)) per-path sums, run only on grids up to {args.naive_max_grid}x'
        f'{args.naive_max_grid}; "ours_at_same_grid" is our construction on that grid',
        **runner.measure('mask_naive', pn, repeat=1),
        ours_at_same_grid=runner.measure('mask_ours', pn),
        max_abs_diff_vs_ours=max_abs_diff(runner.output('mask_naive', pn),
                                          runner.output('mask_ours', pn)))
    return res


def section_attention(runner: Runner, args) -> dict:
    p = dict(grid=list(args.grid), heads=args.heads, dims=args.dims, batch=1)
    unit = map_mib(1, args.heads, args.grid)
    res: Dict[str, Any] = dict(grid=p['grid'], heads=args.heads, dims=args.dims, batch=1,
                               map_mib=unit, target_peak_ratio=0.5)
    if 5 * unit * MiB > args.max_gib * GiB:
        res['skipped'] = f'materialised attention needs ~{5 * unit / 1024:.1f} GiB > --max-gib'
        return res
    res['ours_whole'] = runner.measure('attn_ours_whole', p)
    res['materialised_whole'] = runner.measure('attn_materialised_whole', p)
    res['ours_chunk'] = runner.measure('attn_ours_chunk', p)
    res['max_abs_diff_ours_vs_materialised'] = max_abs_diff(
        runner.output('attn_ours_whole', p), runner.output('attn_materialised_whole', p))
    ratio = None
    if res['materialised_whole']['peak_mib'] > 0:
        ratio = res['ours_whole']['peak_mib'] / res['materialised_whole']['peak_mib']
    res['peak_ratio_ours_vs_materialised'] = ratio
    res['target_met'] = ratio is not None and ratio <= res['target_peak_ratio']
    return res


def whole_stage_gib(size: int, modes: Sequence[str]) -> float:
    """Estimated peak of PPMA-T's largest whole-mode stage at ``size`` (3 float32 N×N maps)."""
    arch = PPMA.arch_zoo['tiny']
    grid = math.ceil(size / 4)
    peak = 0.0
    for i, mode in enumerate(modes):
        if mode == 'whole':
            peak = max(peak, 3 * map_mib(1, arch['num_heads'][i], (grid, grid)) / 1024)
        grid = math.ceil(grid / 2)
    return peak


def section_backbone(runner: Runner, args) -> List[dict]:
    rows = []
    for size in args.sizes:
        for name, modes in BACKBONE_VARIANTS.items():
            row: Dict[str, Any] = dict(variant=name, modes=modes, size=size, batch=1)
            need = whole_stage_gib(size, modes)
            if need > args.max_gib:
                row['skipped'] = (f'whole-mode stage needs ~{need:.1f} GiB > '
                                  f'--max-gib {args.max_gib:g}')
            else:
                row.update(runner.measure('backbone', dict(modes=modes, size=size)))
            rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _fmt_row(name: str, m: Optional[dict], unit: Optional[float] = None) -> str:
    if m is None or 'latency_ms' not in m:
        return f'  {name:<34} {"skipped":>12}'
    rel = f'{m["peak_mib"] / unit:>10.2f}' if unit else ''
    return f'  {name:<34} {m["latency_ms"]:>12.1f} {m["peak_mib"]:>12.1f} {rel}'


def report(result: dict) -> str:
    lines = []
    env = result['env']
    lines.append(f'device: {env["device"]} ({env["device_name"]}), torch {env["torch"]}, '
                 f'{env["threads"]} threads, peak memory: {env["memory_method"]}, '
                 f'latency: median of {env["repeat"]} after {env["warmup"]} warm-up')
    header = f'  {"variant":<34} {"latency ms":>12} {"peak MiB":>12} {"peak/map":>10}'

    m = result['mask_construction']
    g = 'x'.join(map(str, m['grid']))
    lines.append(f'\n[a] mask construction, grid {g}, {m["heads"]} heads, batch 1 '
                 f'(one N×N×heads map = {m["map_mib"]:.1f} MiB)')
    if 'skipped' in m:
        lines.append(f'  skipped: {m["skipped"]}')
    else:
        lines.append(header)
        lines.append(_fmt_row('ours (segment sums + apply)', m['ours'], m['map_mib']))
        lines.append(_fmt_row('materialised (repeat+add+permute)', m['materialised'],
                              m['map_mib']))
        nv = m['naive']
        ng = 'x'.join(map(str, nv['grid']))
        nunit = map_mib(1, m['heads'], nv['grid'])
        lines.append(_fmt_row(f'naive per-path @ {ng}', nv, nunit))
        lines.append(_fmt_row(f'ours @ {ng}', nv['ours_at_same_grid'], nunit))
        lines.append(f'  max |ours - materialised| = {m["max_abs_diff_ours_vs_materialised"]:.3g}'
                     f'; max |naive - ours| @ {ng} = {nv["max_abs_diff_vs_ours"]:.3g}')
        lines.append(f'  (naive: {nv["note"]})')

    a = result['whole_attention']
    g = 'x'.join(map(str, a['grid']))
    lines.append(f'\n[b] attention forward, grid {g}, {a["heads"]} heads, {a["dims"]} channels, '
                 f'batch 1 (one N×N×heads map = {a["map_mib"]:.1f} MiB)')
    if 'skipped' in a:
        lines.append(f'  skipped: {a["skipped"]}')
    else:
        lines.append(header)
        lines.append(_fmt_row('ours, whole', a['ours_whole'], a['map_mib']))
        lines.append(_fmt_row('official-style materialised, whole', a['materialised_whole'],
                              a['map_mib']))
        lines.append(_fmt_row('ours, chunk', a['ours_chunk'], a['map_mib']))
        lines.append(f'  max |ours - materialised| (outputs) = '
                     f'{a["max_abs_diff_ours_vs_materialised"]:.3g}')
        ratio = a['peak_ratio_ours_vs_materialised']
        lines.append(f'  peak ratio ours/materialised = '
                     f'{"n/a" if ratio is None else format(ratio, ".3f")}'
                     f' (target <= {a["target_peak_ratio"]}: '
                     f'{"met" if a["target_met"] else "NOT met"})')

    lines.append('\n[c] PPMA-T backbone forward (eval, no grad, batch 1)')
    lines.append(f'  {"variant":<12} {"size":>5} {"modes":<32} {"latency ms":>12} {"peak MiB":>12}')
    for row in result['backbone']:
        modes = ','.join(row['modes'])
        if 'skipped' in row:
            lines.append(f'  {row["variant"]:<12} {row["size"]:>5} {modes:<32} '
                         f'skipped: {row["skipped"]}')
        else:
            lines.append(f'  {row["variant"]:<12} {row["size"]:>5} {modes:<32} '
                         f'{row["latency_ms"]:>12.1f} {row["peak_mib"]:>12.1f}')
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Memory/latency of PPMA\'s polyline path mask: ours vs materialised copies',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--device', default='auto', help="'auto', 'cpu' or 'cuda'")
    parser.add_argument('--grid', type=int, nargs='+', default=[64],
                        help='token grid H [W] for sections a and b')
    parser.add_argument('--heads', type=int, default=8)
    parser.add_argument('--dims', type=int, default=256, help='channels of the attention (b)')
    parser.add_argument('--naive-max-grid', type=int, default=24,
                        help='the naive construction runs on min(grid, this)')
    parser.add_argument('--sizes', type=int, nargs='+', default=[224, 512],
                        help='input sizes of the backbone section')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--cpu-memory', choices=['auto', 'profiler', 'rss'], default='auto',
                        help='how peak memory is measured on CPU (see the module docstring)')
    parser.add_argument('--max-gib', type=float, default=None,
                        help='skip cases whose estimated N×N working set exceeds this '
                        '(default: 4 on CPU, 80%% of the GPU memory on CUDA)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch\'s; 1 with --quick). On a busy '
                        'machine, several threads can be far slower than one')
    parser.add_argument('--quick', action='store_true',
                        help='tiny sizes (grid 16, naive 8, backbone 64, repeat 1) for tests')
    parser.add_argument('--out', help='write the results to this JSON file')
    args = parser.parse_args(argv)
    if len(args.grid) == 1:
        args.grid = args.grid * 2
    if len(args.grid) != 2:
        parser.error('--grid takes H or H W')
    if args.quick:
        args.grid, args.naive_max_grid, args.sizes = [16, 16], 8, [64]
        args.warmup, args.repeat = 0, 1
        if args.threads is None:
            args.threads = 1
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    device = check_device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.max_gib is None:
        args.max_gib = (0.8 * torch.cuda.get_device_properties(0).total_memory / GiB
                        if device == 'cuda' else 4.0)
    method = 'cuda-allocator'
    if device == 'cpu':
        method = args.cpu_memory
        if method == 'auto':
            method = 'profiler' if profiler_available() else 'rss'
    runner = Runner(device, args.warmup, args.repeat, method)
    result = dict(
        env=dict(device=device,
                 device_name=(torch.cuda.get_device_name(0) if device == 'cuda' else
                              platform.processor() or platform.machine()),
                 torch=torch.__version__, threads=torch.get_num_threads(), memory_method=method,
                 warmup=args.warmup, repeat=args.repeat, max_gib=args.max_gib, quick=args.quick,
                 peak_memory='extra memory allocated during one call, output included'),
        mask_construction=section_mask(runner, args),
        whole_attention=section_attention(runner, args),
        backbone=section_backbone(runner, args),
    )
    print(report(result))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)
        print(f'\nwrote {args.out}')
    return result


if __name__ == '__main__':
    main()
