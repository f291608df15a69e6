"""Inference speed of a config's model: latency, images/s and peak memory, on CPU or GPU.

    python tools/analysis_tools/benchmark.py CONFIG [--shape H W] [--batch-size B] [--device cpu]
                                             [--warmup 5] [--iters 20] [--amp] [--out result.json]
"""
import argparse
import json
import resource
import statistics
import time

import mmmask  # noqa: F401
import torch
from mmengine.config import DictAction

from mmmask.apis import build_model_from_cfg, dummy_inputs, load_config
from mmmask.apis.model_inputs import forward_tensor
from mmmask.utils.checks import check_device


def benchmark(model, inputs, device: str, warmup: int, iters: int, amp: bool) -> dict:
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    autocast = torch.autocast(device_type=device,
                              dtype=torch.float16 if device == 'cuda' else torch.bfloat16,
                              enabled=amp)
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    times = []
    with torch.no_grad(), autocast:
        for i in range(warmup + iters):
            sync()
            t0 = time.perf_counter()
            forward_tensor(model, inputs)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    batch = inputs.shape[0]
    result = dict(
        device=device, batch_size=batch, input_shape=list(inputs.shape[1:]), iters=iters,
        latency_ms_mean=1e3 * statistics.mean(times), latency_ms_median=1e3 * statistics.median(times),
        images_per_s=batch / statistics.median(times), threads=torch.get_num_threads())
    if device == 'cuda':
        result['peak_memory_mb'] = torch.cuda.max_memory_allocated() / 2**20
    else:  # process peak resident set size (includes the Python runtime and the weights)
        result['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main():
    parser = argparse.ArgumentParser(description='Benchmark a model\'s inference speed')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--shape', type=int, nargs='+', default=[224, 224], help='H W or C H W')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--device', default='auto', help="'auto', 'cpu' or 'cuda'")
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--amp', action='store_true', help='fp16 (GPU) / bf16 (CPU) autocast')
    parser.add_argument('--out', help='also write the result to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()

    device = check_device(args.device)
    cfg = load_config(args.config, args.cfg_options)
    model = build_model_from_cfg(cfg, device)
    inputs = dummy_inputs(args.shape, args.batch_size, device)
    result = benchmark(model, inputs, device, args.warmup, args.iters, args.amp)
    result['config'] = args.config
    result['params_m'] = sum(p.numel() for p in model.parameters()) / 1e6
    for k, v in result.items():
        print(f'{k:>18}: {v:.3f}' if isinstance(v, float) else f'{k:>18}: {v}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)


if __name__ == '__main__':
    main()
