"""PEM vs Mask2Former: latency and FLOPs of the same R50 semantic model, in one run.

    python tools/analysis_tools/pem_benchmark.py [--device cpu|cuda] [--size 512 512]
        [--repeat 5] [--warmup 2] [--threads N] [--out result.json]

Both models are mmseg ``EncoderDecoder``s with the same ResNet-50 backbone (random weights; cost
does not depend on them) on ADE20K's 150 classes: PEM from ``configs/pem/pem_r50_8xb4-160k_ade20k-
512x512.py`` and mmseg's own ``mask2former_r50_8xb2-160k_ade20k-512x512.py`` (MSDeformAttn pixel
decoder with 6 encoder layers, 9 masked-attention decoder layers). For each we report:

* **latency**: median wall time of ``model.predict`` (backbone, head, semantic inference and
  upsampling to the input size; batch 1, no grad) over ``--repeat`` calls after ``--warmup``;
  also the head alone (backbone features precomputed).
* **GFLOPs**: multiply-adds (the fvcore/paper convention, i.e. half of torch's FLOP count) counted
  by ``torch.utils.flop_counter`` on the dispatched aten ops, plus the modulated deformable convs
  (mmcv ops that the counter cannot see; counted as a 3×3 conv each) — the bilinear sampling of
  DCN and of MSDeformAttn is not counted, which slightly favours neither model.

The paper claims ~1.7x the FPS of Mask2Former at similar accuracy (35.7 vs 21.5 FPS, R50, ADE20K,
on an RTX 3090); our target for this tool is PEM ≤ 0.6x Mask2Former latency.
"""
import argparse
import json
import os.path as osp
import platform
import statistics
import time
from typing import Callable, Dict

import torch

import mmmask  # noqa: F401
from mmmask.apis import build_model_from_cfg, load_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = {
    'PEM': osp.join(REPO, 'configs', 'pem', 'pem_r50_8xb4-160k_ade20k-512x512.py'),
    'Mask2Former': ('mmseg', 'mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py'),
}
NO_PRETRAIN = {'model.backbone.init_cfg': None}


def _dcn_macs(model: torch.nn.Module) -> Callable[[], int]:
    """Hooks counting each mmcv ModulatedDeformConv2d as a dense conv of its kernel size."""
    from mmcv.ops import ModulatedDeformConv2d
    total = [0]

    def hook(module, inputs, output):
        k = module.kernel_size[0] * module.kernel_size[1]
        total[0] += output.numel() * (module.in_channels // module.groups) * k

    for m in model.modules():
        if isinstance(m, ModulatedDeformConv2d):
            m.register_forward_hook(hook)
    return lambda: total[0]


def _median_time(fn: Callable[[], object], repeat: int, warmup: int, device: str) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if device == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str, size, device: str, repeat: int, warmup: int) -> Dict[str, float]:
    from mmseg.structures import SegDataSample
    path = CONFIGS[name]
    if isinstance(path, tuple):  # a config shipped inside an upstream package
        import importlib
        package, rel = path
        path = osp.join(osp.dirname(importlib.import_module(package).__file__), '.mim',
                        'configs', rel)
    cfg = load_config(path, dict(NO_PRETRAIN))
    model = build_model_from_cfg(cfg, device).requires_grad_(False)
    h, w = size
    inputs = torch.randn(1, 3, h, w, device=device)
    meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w), batch_input_shape=(h, w),
                padding_size=[0, 0, 0, 0])
    samples = [SegDataSample(metainfo=meta)]
    params = sum(p.numel() for p in model.parameters())
    head_params = sum(p.numel() for p in model.decode_head.parameters())
    with torch.no_grad():
        feats = model.extract_feat(inputs)
        total = _median_time(lambda: model.predict(inputs, samples), repeat, warmup, device)
        head = _median_time(lambda: model.decode_head.predict(feats, [meta], model.test_cfg),
                            repeat, warmup, device)
        from torch.utils.flop_counter import FlopCounterMode
        dcn = _dcn_macs(model)
        with FlopCounterMode(display=False) as counter:
            model.predict(inputs, samples)
        macs = counter.get_total_flops() / 2 + dcn()
        with FlopCounterMode(display=False) as counter:
            model.extract_feat(inputs)
        backbone_macs = counter.get_total_flops() / 2
    return dict(latency_s=total, head_latency_s=head, gmacs=macs / 1e9,
                head_gmacs=(macs - backbone_macs) / 1e9, params_m=params / 1e6,
                head_params_m=head_params / 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--size', type=int, nargs=2, default=[512, 512])
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--out', help='write the results as JSON')
    args = parser.parse_args()
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device is visible; use --device cpu')
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = {name: measure(name, args.size, args.device, args.repeat, args.warmup)
               for name in CONFIGS}
    pem, m2f = results['PEM'], results['Mask2Former']
    print(f'{"model":<12} {"latency":>9} {"head":>9} {"GFLOPs":>8} {"head GF":>8} '
          f'{"params":>8} {"head":>7}')
    for name, r in results.items():
        print(f'{name:<12} {r["latency_s"] * 1e3:>7.0f}ms {r["head_latency_s"] * 1e3:>7.0f}ms '
              f'{r["gmacs"]:>8.1f} {r["head_gmacs"]:>8.1f} {r["params_m"]:>7.1f}M '
              f'{r["head_params_m"]:>6.1f}M')
    ratio = pem['latency_s'] / m2f['latency_s']
    print(f'PEM / Mask2Former latency: {ratio:.2f} (target ≤ 0.60: '
          f'{"met" if ratio <= 0.6 else "NOT met"}); head only: '
          f'{pem["head_latency_s"] / m2f["head_latency_s"]:.2f}; GFLOPs: '
          f'{pem["gmacs"] / m2f["gmacs"]:.2f}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(device=args.device, size=args.size, threads=torch.get_num_threads(),
                           machine=platform.processor() or platform.machine(),
                           torch=torch.__version__, results=results, latency_ratio=ratio), f,
                      indent=2)


if __name__ == '__main__':
    main()
