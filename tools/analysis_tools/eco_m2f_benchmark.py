"""ECO-M2F encoder cost per exit and of gated models (arXiv 2404.15244), on the CPU.

    python tools/analysis_tools/eco_m2f_benchmark.py [--size 512 512] [--repeat 3]
        [--gate CONFIG CHECKPOINT LABEL [--gate ...]] [--num-images 50] [--out result.json]

1. **Per exit.** Mask2Former's pixel decoder with an R50 backbone (random init; mmdet ResNet-50
   channels 256/512/1024/2048, Mask2Former's 6-layer encoder: 256-d, 8 heads, 4 points, FFN 1024)
   at ``--size``: encoder GFLOPs of 2…6 layers and the measured latency of the whole pixel
   decoder with a fixed exit (median of ``--repeat`` runs, after one warm-up, batch 1).
   GFLOPs are counted as fvcore does (one multiply-add = one FLOP, linear layers only; the
   bilinear sampling, softmax and LayerNorms — under 3 % — are listed separately): per layer
   ``N·C·(3·h·L·P) + 2·N·C² + 2·N·C·F`` for ``N`` tokens. At 1024×2048 this gives 31.3 GFLOPs per
   layer, the 31.5 of the official per-exit table (412.0 … 537.8 GFLOPs for 2 … 6 layers).
2. **Gated models** (``--gate``, repeatable): the model of CONFIG/CHECKPOINT (an
   ``mmmask.ECOMask2Former`` whose gate was trained in step C) runs its gate on the first
   ``--num-images`` images of its validation set; we report the exit histogram, the mean number
   of encoder layers, and the expected encoder GFLOPs of those exits *at the R50/--size encoder
   of part 1* (the gate's choice is what transfers; the per-layer cost is that of the benchmark
   encoder), against the full 6-layer encoder.
"""
import argparse
import json
import statistics
import sys
import time
from typing import Dict, List

import torch
from mmengine.config import Config, ConfigDict

from mmmask.models.layers import EarlyExitMSDeformAttnPixelDecoder

R50_CHANNELS = (256, 512, 1024, 2048)


def encoder_layer_flops(tokens: int, dims: int = 256, heads: int = 8, levels: int = 3,
                        points: int = 4, ffn: int = 1024) -> Dict[str, float]:
    """FLOPs (multiply-adds) of one MSDeformAttn encoder layer on ``tokens`` tokens."""
    linear = tokens * dims * (3 * heads * levels * points) + 2 * tokens * dims * dims \
        + 2 * tokens * dims * ffn
    sampling = 5 * tokens * levels * points * dims  # 4 bilinear taps + weighted sum
    other = 10 * tokens * dims  # two LayerNorms, residuals, softmax (approx.)
    return dict(linear=float(linear), sampling=float(sampling), other=float(other))


def build_decoder(dims: int = 256) -> EarlyExitMSDeformAttnPixelDecoder:
    enc = ConfigDict(
        num_layers=6,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=dims, num_heads=8, num_levels=3, num_points=4,
                               batch_first=True, dropout=0.0),
            ffn_cfg=dict(embed_dims=dims, feedforward_channels=1024, num_fcs=2, ffn_drop=0.0,
                         act_cfg=dict(type='ReLU', inplace=True))))
    return EarlyExitMSDeformAttnPixelDecoder(
        in_channels=list(R50_CHANNELS), strides=[4, 8, 16, 32], feat_channels=dims,
        out_channels=dims, num_outs=3, encoder=enc,
        positional_encoding=dict(num_feats=dims // 2, normalize=True))


def per_exit(size, repeat: int) -> List[dict]:
    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
    backbone = ResNet(depth=50, out_indices=(0, 1, 2, 3))
    backbone.eval()  # (mmdet's ResNet.train returns None: no chaining)
    decoder = build_decoder()
    decoder.init_weights()
    decoder.eval()
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, *size))
    tokens = sum(f.shape[-2] * f.shape[-1] for f in feats[1:])
    per_layer = encoder_layer_flops(tokens)
    rows = []
    for e in decoder.exits:
        decoder.set_exit_mode('fixed', e)
        with torch.no_grad():
            decoder(list(feats))
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                decoder(list(feats))
                times.append(time.perf_counter() - t)
        rows.append(dict(exit=e, tokens=tokens, gflops=e * per_layer['linear'] / 1e9,
                         gflops_sampling=e * per_layer['sampling'] / 1e9,
                         gflops_other=e * per_layer['other'] / 1e9,
                         latency_ms=1000 * statistics.median(times)))
    return rows


def gated_exits(config: str, checkpoint: str, num_images: int) -> List[int]:
    """Exits the model's gate chooses on the first ``num_images`` validation images."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner, load_checkpoint
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    from mmdet.registry import MODELS
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu')
    model.eval()
    decoder = model.panoptic_head.pixel_decoder
    decoder.set_exit_mode('gated')
    loader_cfg = cfg.val_dataloader.copy()
    loader_cfg.update(batch_size=1, num_workers=0, persistent_workers=False)
    loader_cfg.dataset['indices'] = num_images
    exits: List[int] = []
    with torch.no_grad():
        for data in Runner.build_dataloader(loader_cfg):
            data = model.data_preprocessor(data, False)
            feats = model.extract_feat(data['inputs'])
            logits = decoder.gate_logits(list(feats))
            exits += (logits.argmax(1) + decoder.exits[0]).tolist()
    return exits


def main() -> int:
    parser = argparse.ArgumentParser(description='ECO-M2F encoder cost per exit / gated')
    parser.add_argument('--size', type=int, nargs=2, default=[512, 512], help='H W')
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--gate', nargs=3, action='append', default=[],
                        metavar=('CONFIG', 'CHECKPOINT', 'LABEL'))
    parser.add_argument('--num-images', type=int, default=50)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--out', default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = per_exit(tuple(args.size), args.repeat)
    print(f'R50 + Mask2Former pixel decoder at {args.size[0]}x{args.size[1]} '
          f'({rows[0]["tokens"]} encoder tokens), CPU, {torch.get_num_threads()} threads')
    print('layers  encoder GFLOPs  (+sampling)  pixel-decoder latency ms')
    for r in rows:
        print(f'{r["exit"]:>6}  {r["gflops"]:14.2f}  {r["gflops_sampling"]:11.2f}  '
              f'{r["latency_ms"]:24.1f}')
    by_exit = {r['exit']: r for r in rows}
    full = by_exit[max(by_exit)]
    gates = []
    for config, ckpt, label in args.gate:
        exits = gated_exits(config, ckpt, args.num_images)
        mean_layers = sum(exits) / len(exits)
        gflops = sum(by_exit[e]['gflops'] for e in exits) / len(exits)
        latency = sum(by_exit[e]['latency_ms'] for e in exits) / len(exits)
        hist = {e: exits.count(e) for e in sorted(by_exit)}
        gates.append(dict(label=label, config=config, checkpoint=ckpt, images=len(exits),
                          mean_layers=mean_layers, exit_counts=hist, encoder_gflops=gflops,
                          expected_latency_ms=latency))
    if gates:
        print('model              images  mean layers  encoder GFLOPs  vs 6 layers  exits')
        print(f'{"full (6 layers)":<18} {"-":>6}  {6.0:11.2f}  {full["gflops"]:14.2f}  '
              f'{100.0:10.1f}%')
        for g in gates:
            print(f'{g["label"]:<18} {g["images"]:>6}  {g["mean_layers"]:11.2f}  '
                  f'{g["encoder_gflops"]:14.2f}  '
                  f'{100 * g["encoder_gflops"] / full["gflops"]:10.1f}%'
                  f'  {g["exit_counts"]}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(size=args.size, threads=torch.get_num_threads(), per_exit=rows,
                           gates=gates), f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
