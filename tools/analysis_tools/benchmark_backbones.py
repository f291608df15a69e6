"""Cost of the efficient backbones against a plain ViT of equal width/depth, measured in one run.

    python tools/analysis_tools/benchmark_backbones.py [NAME ...] [--batch-size 8] [--rounds 5]
        [--iters 5] [--warmup 2] [--threads 1] [--device cpu] [--out table.md]

For each entry of ``PAIRS`` (all when no NAME is given) the method's backbone and its baseline are
built from the small dicts below and timed **interleaved** (each round runs ``--iters`` forwards of
every model in turn, so machine load hits all alike); the table reports parameters, forward FLOPs
(``torch.utils.flop_counter.FlopCounterMode``: matmuls, convolutions and attention kernels, plus
what a method spends outside them, e.g. Hyena's FFTs, from its cost model),
the median forward latency over rounds, images/s, and each ratio to the entry's baseline. Extra
per-method metrics (Sparsifiner's MHSA FLOPs at its keep ratio, GMM's parameter overhead,
LookupViT's compressed-grid sweep) come from the methods' own functions, listed in ``EXTRAS``.

The baselines are mmpretrain's ``VisionTransformer`` with the method's embedding width, depth,
heads, MLP ratio, patch size and input resolution (`vit(...)`), so a ratio isolates what the method
changes. These are the published architectures' cost claims, measured on the sizes named in each
entry (ImageNet-scale by default); pass ``--device cuda`` where there is a GPU.
"""
import argparse
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional

import torch
from mmengine.registry import init_default_scope
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import mmmask  # noqa: F401
from mmmask.registry import MODELS


def vit(embed_dims: int, num_layers: int, num_heads: int, mlp_ratio: float = 4.0,
        img_size: int = 224, patch_size: int = 16, with_cls_token: bool = True) -> dict:
    """mmpretrain's plain ViT with the given width/depth (the baseline of every pair)."""
    return dict(type='mmpretrain.VisionTransformer',
                arch=dict(embed_dims=embed_dims, num_layers=num_layers, num_heads=num_heads,
                          feedforward_channels=int(embed_dims * mlp_ratio)),
                img_size=img_size, patch_size=patch_size, with_cls_token=with_cls_token,
                out_type='cls_token' if with_cls_token else 'avg_featmap')


#: name -> dict(model=backbone cfg, baseline=backbone cfg, input=(H, W), note=...,
#: [baseline_input=(H, W)], [uncounted=kind in UNCOUNTED])
PAIRS: Dict[str, dict] = {
    # CvT-13 (3 stages 64/192/384, depths 1/2/10) vs a ViT of its final width and total depth
    'cvt-13': dict(model=dict(type='mmmask.CvT', arch='cvt-13'),
                   baseline=vit(384, 13, 6), input=(224, 224), note='ViT 384-d × 13, p16'),
    # path ensemble: same network (the running sum is extra); pruning the last layer's two paths
    # lets the forward stop one layer early (only tail pruning saves compute)
    'path-ensemble-deit-s': dict(model=dict(type='mmmask.PathEnsembleViT', arch='deit-small'),
                                 baseline=vit(384, 12, 6), input=(224, 224), note='DeiT-S'),
    'path-ensemble-deit-s-pruned': dict(
        model=dict(type='mmmask.PathEnsembleViT', arch='deit-small',
                   prune_paths=['attn.11', 'ffn.11']),
        baseline=vit(384, 12, 6), input=(224, 224), note='DeiT-S'),
}
# GMM attention: the official CIFAR ViT (192-d × 9, 12 heads of 16, patch 4) with the Gaussian
# mixture mask against the same network without it (both on the explicit-softmax path, so the
# ratio isolates the mask; a plain SDPA ViT is the second baseline)
_GMM = dict(type='mmmask.GMMViT', arch='vit', img_size=32, patch_size=4)
PAIRS['gmm-vit'] = dict(model=dict(_GMM, mask_type='gmm'), baseline=dict(_GMM, mask_type=None),
                        input=(32, 32), note='same ViT, no mask')
PAIRS['gmm-vit-vs-sdpa'] = dict(model=dict(_GMM, mask_type='gmm'),
                                baseline=vit(192, 9, 12, mlp_ratio=2, img_size=32, patch_size=4,
                                             with_cls_token=False),
                                input=(32, 32), note='mmpretrain ViT 192-d × 9 (SDPA)')
# LookupViT-S at several compressed grids (same weights) vs ViT-S (384-d × 12, patch 16)
for _grid in (10, 7, 5, 3):
    PAIRS[f'lookupvit-s@{_grid}x{_grid}'] = dict(
        model=dict(type='mmmask.LookupViT', arch='small', compressed_grid=_grid),
        baseline=vit(384, 12, 6), input=(224, 224), note='ViT-S 384-d × 12, p16')
# S2AFormer-T (hierarchical, 4 stages) vs the same network without strips (PVT-style spatial
# reduction, d_qk = C) and with plain full attention, and vs DeiT-T of similar cost
_S2A_T = dict(embed_dims=[48, 96, 192, 384], depths=[2, 2, 6, 2], num_heads=[1, 2, 4, 8],
              qk_dims=[12, 24, 48, 96], sr_ratios=[8, 4, 2, 1], mlp_ratios=[4, 4, 4, 4],
              drop_path_rate=0.1)
_S2A = dict(type='mmmask.S2AFormer', out_indices=(3, ))
PAIRS['s2aformer-t-vs-pvt-style'] = dict(
    model=dict(_S2A, arch=_S2A_T),
    baseline=dict(_S2A, arch=dict(_S2A_T, qk_dims=_S2A_T['embed_dims'])),
    input=(224, 224), note='same net, d_qk = C (no strips)')
PAIRS['s2aformer-t-vs-full-attention'] = dict(
    model=dict(_S2A, arch=_S2A_T),
    baseline=dict(_S2A, arch=dict(_S2A_T, qk_dims=_S2A_T['embed_dims'], sr_ratios=[1, 1, 1, 1])),
    input=(224, 224), note='same net, full attention')
PAIRS['s2aformer-t-vs-deit-t'] = dict(model=dict(_S2A, arch=_S2A_T), baseline=vit(192, 12, 3),
                                      input=(224, 224), note='DeiT-T 192-d × 12, p16')
# Sparsifiner-S (DeiT-S + connectivity predictors, keep 0.25) vs DeiT-S: the measured forward
# runs the dense kernels with -inf masks (as the official code), so its MHSA saving is reported from
# mhsa_flops (attention products on kept connections + the predictor, vs dense)
PAIRS['sparsifiner-s'] = dict(model=dict(type='mmmask.Sparsifiner', arch='sparsifiner-s'),
                              baseline=vit(384, 12, 6), input=(224, 224), note='DeiT-S')
# CrossViT-Ti (240 px S branch patch 12 + 224 px L branch patch 16) vs DeiT-Ti (its L branch's
# width and depth) at 224
PAIRS['crossvit-ti'] = dict(model=dict(type='mmmask.CrossViT', arch='tiny'),
                            baseline=vit(192, 12, 3), input=(240, 240), baseline_input=(224, 224),
                            note='DeiT-Ti 192-d × 12, p16 @224')
# Hyena N-D: the small-data ViT (192-d × 9, patch 4, MLP ×2, no CLS) at growing token grids; the
# mixer's FFT long convolutions are invisible to the FLOP counter and added from the cost model
for _size in (32, 64, 128, 256):
    PAIRS[f'hyena-vit-sd@{_size}'] = dict(
        model=dict(type='mmmask.HyenaViT', arch='vit-small-data', img_size=_size, patch_size=4),
        baseline=vit(192, 9, 12, mlp_ratio=2, img_size=_size, patch_size=4,
                     with_cls_token=False),
        input=(_size, _size), note=f'ViT 192-d × 9, p4, {(_size // 4)**2} tokens',
        uncounted='hyena')
#: name -> f(model, input_shape) -> {metric: value} (method-specific measurements)
EXTRAS: Dict[str, Callable[[nn.Module, tuple], Dict[str, float]]] = {}


def _hyena_uncounted(model: nn.Module, hw: tuple) -> int:
    from mmmask.models.backbones.hyena_nd import hyena_vit_uncounted_flops
    return int(2 * hyena_vit_uncounted_flops(model, hw)['fft_and_gating'])


def _path_ensemble_extras(model: nn.Module, shape: tuple) -> Dict[str, float]:
    return dict(active_layers=float(model.active_layers()))


#: ``uncounted`` kinds: FLOPs a model spends outside what FlopCounterMode sees (FFTs)
UNCOUNTED = {'hyena': _hyena_uncounted}
def _sparsifiner_extras(model: nn.Module, shape: tuple) -> Dict[str, float]:
    from mmmask.models.backbones.sparsifiner import mhsa_flops
    f = mhsa_flops(model, shape[-2:])
    return dict(mhsa_reduction=f['reduction_attention'],
                mhsa_reduction_dense_predictor=f['reduction_attention_dense_predictor'],
                attention_sparsity=f['reduction_attention_no_predictor'],
                mhsa_incl_projections_reduction=f['reduction_mhsa'])


def _gmm_extras(model: nn.Module, shape: tuple) -> Dict[str, float]:
    from mmmask.models.backbones.gmm_vit import gmm_param_overhead
    return {f'params_{k}': float(v) for k, v in gmm_param_overhead(192, 9, 12, 5).items()}


EXTRAS.update({'sparsifiner-s': _sparsifiner_extras, 'gmm-vit': _gmm_extras, 'gmm-vit-vs-sdpa': _gmm_extras,
               'path-ensemble-deit-s': _path_ensemble_extras,
               'path-ensemble-deit-s-pruned': _path_ensemble_extras})


def _register_cpu_sdpa_flops() -> None:
    """torch's FlopCounterMode has formulas for the CUDA SDPA kernels only; on CPU
    ``F.scaled_dot_product_attention`` (mmpretrain's ViT, several backbones here) would count as 0.
    Count the CPU kernel like the CUDA ones (QKᵀ and AV matmuls)."""
    from torch.utils import flop_counter
    op = getattr(torch.ops.aten, '_scaled_dot_product_flash_attention_for_cpu', None)
    if op is None or op in flop_counter.flop_registry or op.default in flop_counter.flop_registry:
        return

    @flop_counter.register_flop_formula(op)
    def _cpu_sdpa(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """Forward FLOPs (matmuls, convolutions and attention kernels) of one call."""
    _register_cpu_sdpa_flops()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build(cfg: dict, device: str) -> nn.Module:
    model = MODELS.build(cfg)
    if hasattr(model, 'init_weights'):
        model.init_weights()
    model.to(device)
    model.eval()  # (mmpretrain backbones return None from train()/eval())
    return model


def time_forward(model: nn.Module, x: torch.Tensor, iters: int, device: str) -> float:
    if iters <= 0:
        return 0.0
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    with torch.no_grad():
        sync()
        start = time.perf_counter()
        for _ in range(iters):
            model(x)
        sync()
    return (time.perf_counter() - start) / iters


def run(names: List[str], batch_size: int, rounds: int, iters: int, warmup: int,
        device: str) -> List[dict]:
    init_default_scope('mmmask')
    entries = []
    for name in names:
        pair = PAIRS[name]
        for role in ('model', 'baseline'):
            h, w = pair.get(f'{role}_input', pair['input'])
            x = torch.randn(batch_size, 3, h, w, device=device)
            torch.manual_seed(0)
            model = build(pair[role], device)
            flops = count_flops(model, x[:1])
            if role == 'model' and pair.get('uncounted'):
                flops += UNCOUNTED[pair['uncounted']](model, (h, w))
            entry = dict(name=name, role=role, module=model, x=x, times=[],
                         params=params(model), flops=flops)
            if role == 'model' and name in EXTRAS:
                entry['extras'] = EXTRAS[name](model, (1, 3, h, w))
            time_forward(model, x, warmup, device)
            entries.append(entry)
    for _ in range(rounds):
        for entry in entries:
            entry['times'].append(time_forward(entry['module'], entry['x'], iters, device))
    rows = []
    for model_entry, base_entry in zip(entries[::2], entries[1::2]):
        row = dict(name=model_entry['name'], note=PAIRS[model_entry['name']].get('note', ''),
                   extras=model_entry.get('extras', {}))
        for role, entry in (('model', model_entry), ('baseline', base_entry)):
            latency = statistics.median(entry['times'])
            row[role] = dict(params=entry['params'], flops=entry['flops'], latency=latency,
                             throughput=batch_size / latency)
        rows.append(row)
    return rows


def format_table(rows: List[dict], batch_size: int, device: str) -> str:
    lines = [f'Forward cost vs a plain ViT of equal width/depth (batch {batch_size}, {device}, '
             f'{torch.get_num_threads()} thread(s); FLOPs per image, latency = median per batch)',
             '', '| backbone | params (M) | GMACs | latency (ms) | img/s | params × | FLOPs × | '
             'latency × | baseline | extras |', '|' + '---|' * 10]
    for row in rows:
        m, b = row['model'], row['baseline']
        extras = ', '.join(f'{k} {v:.4g}' for k, v in row['extras'].items())
        lines.append(
            f"| {row['name']} | {m['params'] / 1e6:.2f} | {m['flops'] / 2e9:.3f} | "
            f"{m['latency'] * 1e3:.1f} | {m['throughput']:.1f} | "
            f"{m['params'] / b['params']:.3f} | {m['flops'] / b['flops']:.3f} | "
            f"{m['latency'] / b['latency']:.3f} | {row['note']} "
            f"({b['params'] / 1e6:.2f} M, {b['flops'] / 2e9:.3f} GMACs) | {extras} |")
    lines.append('')
    lines.append('GMACs = multiply-accumulates per image / 1e9 (what papers quote as "GFLOPs"); '
                 'FLOPs × is the ratio of the same counts.')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('names', nargs='*', help=f'entries (default: all of {sorted(PAIRS)})')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--out', help='also write the table (markdown) here')
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in PAIRS]
    if unknown:
        parser.error(f'unknown entries {unknown}; choose from {sorted(PAIRS)}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: CUDA is not available here; use --device cpu')
    if args.threads:
        torch.set_num_threads(args.threads)
    # init_weights() of every model logs each parameter at INFO: keep the table readable
    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine').setLevel('WARNING')
    rows = run(args.names or sorted(PAIRS), args.batch_size, args.rounds, args.iters,
               args.warmup, args.device)
    table = format_table(rows, args.batch_size, args.device)
    print(table)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
