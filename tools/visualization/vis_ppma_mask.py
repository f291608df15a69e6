"""Show PPMA's polyline path mask and the attention of one query token, overlaid on an image.

    python tools/visualization/vis_ppma_mask.py IMAGE (--config CFG | --arch tiny)
        [--checkpoint CKPT] --stage S --block B --head H --query ROW COL --out-dir DIR
        [--size 224] [--device auto]

The image is resized to ``--size``, normalised (the config's data-preprocessor mean/std, else
ImageNet's) and run through the backbone up to ``stages[S].blocks[B].attn``, whose input (the
block's ``ln1`` output) and rotary tables are captured by a forward pre-hook. ``ROW COL`` is the
query's position on that stage's token grid (the grid is printed; negative values count from the
end). From that input the tool computes, for head ``H``:

* ``exp(M[q, :])``: the multiplicative decay from the query along the L-shaped paths that go along
  the query's row, then along the key's column (``M`` is the log-decay mask);
* ``exp(Mᵀ[q, :])``: the same along the other L-shaped path (column first, then row);
* the attention of the query token over all keys: for ``mode='whole'``,
  ``½·softmax(qKᵀ + M[q]) + ½·softmax(qKᵀ + Mᵀ[q])``; for ``mode='chunk'``, the effective weights of
  the axial composition ``½·A_h(A_w V) + ½·A_w(A_h V)`` (every key's weight is the product of the
  row and column softmax weights along its path).

Each map is upsampled to the image size, colour-mapped and blended with the image; the query token
is outlined. Written: ``*_mask.png``, ``*_mask_T.png``, ``*_attn.png`` and ``*_panel.png``
(image | mask | transposed-path mask | attention, with value ranges), all in ``--out-dir``.
"""
import argparse
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from mmmask.models.backbones.ppma import PPMA, PolylinePathAttention, apply_rope
from mmmask.models.layers.attention_bias import PolylinePathBias
from mmmask.utils.checks import check_device

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # RGB, 0-255
IMAGENET_STD = (58.395, 57.12, 57.375)

# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


def _config_mean_std(cfg) -> Tuple[Sequence[float], Sequence[float]]:
    pre = cfg.get('model', {}).get('data_preprocessor') or cfg.get('data_preprocessor') or {}
    if pre.get('mean') is not None and pre.get('std') is not None:
        return pre['mean'], pre['std']
    return IMAGENET_MEAN, IMAGENET_STD


def build_backbone(config: Optional[str], arch: str, checkpoint: Optional[str],
                   device: str) -> Tuple[PPMA, Sequence[float], Sequence[float]]:
    """The PPMA backbone of ``config`` (an mmseg/mmpretrain/mmdet model's ``backbone`` or a bare
    PPMA), else a PPMA of ``arch``; weights from ``checkpoint`` if given, else random init."""
    from mmengine.runner import load_checkpoint
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    if config is not None:
        from mmmask.apis import build_model_from_cfg, load_config
        cfg = load_config(config)  # also calls init_default_scope(cfg.default_scope)
        mean, std = _config_mean_std(cfg)
        model = build_model_from_cfg(cfg, 'cpu')
        if checkpoint:
            load_checkpoint(model, checkpoint, map_location='cpu')
        backbone = getattr(model, 'backbone', model)
    else:
        backbone = PPMA(arch=arch)
        backbone.init_weights()
        if checkpoint:  # a backbone checkpoint, or a full model's (backbone.* keys)
            load_checkpoint(backbone, checkpoint, map_location='cpu',
                            revise_keys=[(r'^backbone\.', ''), (r'^module\.', '')])
    if not isinstance(backbone, PPMA):
        raise TypeError(f'the model\'s backbone is a {type(backbone).__name__}, not a PPMA')
    return backbone.to(device).eval(), mean, std


class _Captured(Exception):
    """Raised by the hook to stop the forward once the block's input is captured."""


def capture_attention_input(
        backbone: PPMA, img: Tensor, stage: int,
        block: int) -> Tuple[PolylinePathAttention, Tensor, Tuple[Tensor, Tensor]]:
    """Run ``backbone`` on ``img`` until ``stages[stage].blocks[block].attn``; return that attention
    module, its input (the ``ln1``-normalised block input, ``(1, H, W, C)``) and its rope tables."""
    attn = backbone.stages[stage].blocks[block].attn
    store: Dict[str, tuple] = {}

    def hook(module: nn.Module, args: tuple) -> None:
        store['args'] = args
        raise _Captured

    handle = attn.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            backbone(img)
    except _Captured:
        pass
    finally:
        handle.remove()
    if 'args' not in store:
        raise RuntimeError(f'stage {stage} block {block} was not reached')
    x, rope = store['args'][:2]
    return attn, x, rope


# --------------------------------------------------------------------------------------------
# Maps for one query token (all O(N) per map: nothing N×N is built)
# --------------------------------------------------------------------------------------------


def mask_row(bias: PolylinePathBias, head: int, r: int, c: int,
             transpose: bool = False) -> Tensor:
    """Row ``(r, c)`` of ``M`` (or ``Mᵀ``) of one head as an ``(H, W)`` map, from the factors.

    ``M[(r, c), (r2, j)] = row[r][c, j] + col[j][r, r2]`` and
    ``Mᵀ[(r, c), (r2, j)] = row[r2][c, j] + col[c][r, r2]`` (the factors are symmetric); this equals
    ``bias.dense(transpose)[0, head, r * W + c].view(H, W)``.
    """
    row, col = bias.axial()  # (B, H, heads, W, W), (B, W, heads, H, H)
    if not transpose:
        return row[0, r, head, c][None, :] + col[0, :, head, r].transpose(0, 1)
    return row[0, :, head, c] + col[0, c, head, r][:, None]


def _heads_qk(attn: PolylinePathAttention, x: Tensor,
              rope: Tuple[Tensor, Tensor]) -> Tuple[Tensor, Tensor]:
    """Rotated queries and (scaled) keys as the module computes them: ``(heads, H, W, d)``."""
    b, hh, ww, _ = x.shape
    sin, cos = rope
    q = attn.q_proj(x).view(b, hh, ww, attn.num_heads, -1).permute(0, 3, 1, 2, 4)
    k = (attn.k_proj(x) * attn.scale).view(b, hh, ww, attn.num_heads, -1).permute(0, 3, 1, 2, 4)
    return apply_rope(q, sin, cos)[0], apply_rope(k, sin, cos)[0]


def query_attention(attn: PolylinePathAttention, x: Tensor, rope: Tuple[Tensor, Tensor],
                    bias: PolylinePathBias, head: int, r: int, c: int) -> Tensor:
    """The attention weights of query ``(r, c)`` over all keys, as an ``(H, W)`` map summing to 1.

    ``'whole'``: ``½·softmax(q·K + M[q]) + ½·softmax(q·K + Mᵀ[q])``.
    ``'chunk'``: rows first then columns gives key ``(r2, j)`` the weight
    ``A_h[c][r, r2]·A_w[r2][c, j]``; columns first then rows gives ``A_w[r][c, j]·A_h[j][r, r2]``
    (``A_w[row]`` / ``A_h[col]``: the softmaxes along one row / column with their path factor);
    the operator averages the two.
    """
    q, k = _heads_qk(attn, x, rope)
    q, k = q[head], k[head]  # (H, W, d)
    hh, ww, _ = q.shape
    row, col = bias.axial()
    row, col = row[0, :, head], col[0, :, head]  # (H, W, W), (W, H, H)
    if attn.mode == 'whole':
        logits = (k @ q[r, c]).float()  # (H, W)
        a = torch.softmax((logits + mask_row(bias, head, r, c)).flatten(), -1)
        b = torch.softmax((logits + mask_row(bias, head, r, c, transpose=True)).flatten(), -1)
        return (0.5 * a + 0.5 * b).view(hh, ww)
    # chunk: only the softmax rows that the query's two paths go through are needed
    a_w_all = torch.softmax(torch.einsum('rd,rjd->rj', q[:, c], k) + row[:, c], -1)  # A_w[r2][c, :]
    a_h_col = torch.softmax(k[:, c] @ q[r, c] + col[c, r], -1)  # A_h[c][r, :]
    first = a_h_col[:, None] * a_w_all  # (r2, j)
    a_w_row = torch.softmax(k[r] @ q[r, c] + row[r, c], -1)  # A_w[r][c, :]
    a_h_all = torch.softmax(torch.einsum('jd,rjd->jr', q[r], k) + col[:, r], -1)  # A_h[j][r, :]
    second = (a_w_row[:, None] * a_h_all).transpose(0, 1)  # (r2, j)
    return 0.5 * first + 0.5 * second


# --------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------


def colorize(values: np.ndarray) -> np.ndarray:
    """Min-max normalise a 2-D map and colour it (BGR uint8): matplotlib's viridis if importable,
    else OpenCV's."""
    lo, hi = float(values.min()), float(values.max())
    norm = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    try:
        from matplotlib import colormaps
        rgb = colormaps['viridis'](norm)[..., :3]
        return np.ascontiguousarray((rgb[..., ::-1] * 255).round().astype(np.uint8))
    except ImportError:
        return cv2.applyColorMap((norm * 255).round().astype(np.uint8), cv2.COLORMAP_VIRIDIS)


def overlay(image: np.ndarray, values: np.ndarray, query: Tuple[int, int],
            alpha: float = 0.55) -> np.ndarray:
    """Blend the colour-mapped token map (nearest-upsampled to the image) with the image and outline
    the query token."""
    h, w = image.shape[:2]
    gh, gw = values.shape
    heat = cv2.resize(colorize(values), (w, h), interpolation=cv2.INTER_NEAREST)
    out = cv2.addWeighted(heat, alpha, image, 1 - alpha, 0)
    r, c = query
    cx, cy = (c + 0.5) * w / gw, (r + 0.5) * h / gh
    half_w, half_h = max(w / gw / 2, 3), max(h / gh / 2, 3)  # at least 7 px wide
    cv2.rectangle(out, (int(cx - half_w), int(cy - half_h)), (int(cx + half_w), int(cy + half_h)),
                  (0, 0, 255), max(1, w // 250))
    return out


def _titled(img: np.ndarray, lines: List[str]) -> np.ndarray:
    scale = max(0.35, img.shape[1] / 600)
    line_h = int(22 * scale) + 4
    bar = np.full((line_h * len(lines) + 4, img.shape[1], 3), 255, np.uint8)
    for i, text in enumerate(lines):
        cv2.putText(bar, text, (3, line_h * (i + 1) - 4), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, img])


def panel(image: np.ndarray, tiles: List[Tuple[np.ndarray, List[str]]]) -> np.ndarray:
    """The image and the overlays side by side, each with its caption lines."""
    parts = [_titled(image, ['input'] + [''] * (len(tiles[0][1]) - 1))]
    parts += [_titled(tile, lines) for tile, lines in tiles]
    gap = np.full((parts[0].shape[0], 6, 3), 255, np.uint8)
    row: List[np.ndarray] = []
    for p in parts:
        row += [p, gap]
    return np.hstack(row[:-1])


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def load_image(path: str, size: int, mean: Sequence[float],
               std: Sequence[float]) -> Tuple[np.ndarray, Tensor]:
    """``(resized BGR uint8 image, normalised RGB tensor (1, 3, size, size))``."""
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f'cannot read image {path!r}')
    bgr = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_LINEAR)
    rgb = bgr[..., ::-1].astype(np.float32)
    rgb = (rgb - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return bgr, torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Visualise PPMA\'s polyline path mask and one query\'s attention')
    parser.add_argument('image', help='input image')
    parser.add_argument('--config', help='an mmmask/mmseg/mmpretrain/mmdet config with a PPMA '
                        'backbone (default: a bare PPMA of --arch)')
    parser.add_argument('--arch', default='tiny', choices=sorted(PPMA.arch_zoo),
                        help='PPMA arch when no --config is given')
    parser.add_argument('--checkpoint', help='weights (default: random initialisation)')
    parser.add_argument('--stage', type=int, required=True)
    parser.add_argument('--block', type=int, required=True)
    parser.add_argument('--head', type=int, required=True)
    parser.add_argument('--query', type=int, nargs=2, required=True, metavar=('ROW', 'COL'),
                        help='query token on the stage\'s token grid')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--size', type=int, default=224, help='the image is resized to size²')
    parser.add_argument('--device', default='auto', help="'auto', 'cpu' or 'cuda'")
    return parser.parse_args(argv)


def _check_index(name: str, value: int, count: int) -> int:
    if not -count <= value < count:
        raise SystemExit(f'--{name} {value} is out of range (0..{count - 1})')
    return value % count


def main(argv: Optional[Sequence[str]] = None) -> List[str]:
    args = parse_args(argv)
    device = check_device(args.device)
    backbone, mean, std = build_backbone(args.config, args.arch, args.checkpoint, device)
    stage = _check_index('stage', args.stage, len(backbone.stages))
    block = _check_index('block', args.block, len(backbone.stages[stage].blocks))
    head = _check_index('head', args.head, backbone.stages[stage].num_heads)

    image, inputs = load_image(args.image, args.size, mean, std)
    attn, x, rope = capture_attention_input(backbone, inputs.to(device), stage, block)
    hh, ww = x.shape[1:3]
    r = _check_index('query ROW', args.query[0], hh)
    c = _check_index('query COL', args.query[1], ww)
    print(f'stage {stage} block {block}: mode {attn.mode!r}, token grid {hh}x{ww}, '
          f'{attn.num_heads} heads; query ({r}, {c}), head {head}')

    with torch.no_grad():
        bias = attn.path(x)
        decay = mask_row(bias, head, r, c).exp().cpu().numpy()
        decay_t = mask_row(bias, head, r, c, transpose=True).exp().cpu().numpy()
        weights = query_attention(attn, x, rope, bias, head, r, c).cpu().numpy()

    os.makedirs(args.out_dir, exist_ok=True)
    stem = (f'{osp.splitext(osp.basename(args.image))[0]}_s{stage}b{block}h{head}'
            f'_q{r}-{c}')
    maps = [
        ('mask', decay, 'exp(M): row, then column'),
        ('mask_T', decay_t, 'exp(M^T): column, then row'),
        ('attn', weights, f'attention ({attn.mode})'),
    ]
    written, tiles = [], []
    for suffix, values, title in maps:
        tile = overlay(image, values, (r, c))
        path = osp.join(args.out_dir, f'{stem}_{suffix}.png')
        cv2.imwrite(path, tile)
        written.append(path)
        tiles.append((tile, [title, f'min {values.min():.3g} max {values.max():.3g}']))
    path = osp.join(args.out_dir, f'{stem}_panel.png')
    cv2.imwrite(path, panel(image, tiles))
    written.append(path)
    for path in written:
        print(f'wrote {path}')
    return written


if __name__ == '__main__':
    main()
