"""Explanation maps of a trained T-TAME model (mmmask.TAMEClassifier) as PNG overlays, plus the
AD / IC metrics (T-TAME, IEEE Access 2024) over the given images.

Usage:
    python tools/analysis_tools/ttame_explain.py CONFIG CKPT IMAGES --out DIR \
        [--classes 3 5] [--batch-size 16] [--cfg-options k=v ...]

CONFIG is a T-TAME config (``model.type='mmmask.TAMEClassifier'``, wrapping any mmpretrain /
mmmask classifier), CKPT its trained checkpoint (it contains the frozen classifier too), IMAGES an
image file or a folder (searched recursively). Writes ``DIR/<name>_ttame.png`` (image | overlay of
the map of the predicted class, or of each ``--classes`` entry) and ``DIR/metrics.json`` (per image:
predicted class and score, the scores with 100/50/15 % of the map kept; overall AD/IC).
"""
import argparse
import os
import os.path as osp

import cv2
import numpy as np
import torch
from mmengine.config import Config, DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='T-TAME explanation maps as PNG overlays')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('images', help='an image file or a folder of images')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--classes', type=int, nargs='*', default=None,
                        help='class indices to explain (default: the predicted class)')
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--alpha', type=float, default=0.5, help='heat-map opacity')
    parser.add_argument('--no-metrics', action='store_true', help='skip the AD/IC passes')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, key=value')
    return parser.parse_args(argv)


def build_model(cfg, checkpoint: str, device: str):
    """The trained T-TAME model of ``cfg`` (its checkpoint holds the classifier too)."""
    if 'TAMEClassifier' not in str(cfg.model.get('type')):
        raise ValueError(f"{cfg.model.get('type')} is not a T-TAME model: use a configs/ttame/ "
                         'config (model.type=mmmask.TAMEClassifier) and its trained checkpoint')
    from mmmask.apis import load_trained_model
    cfg.model['classifier_checkpoint'] = None
    return load_trained_model(cfg, checkpoint, device, strict=True)


def overlay(img_rgb: np.ndarray, heat: np.ndarray, alpha: float) -> np.ndarray:
    """Blend a [0, 1] map (any size) over an RGB uint8 image with the JET colour map."""
    h, w = img_rgb.shape[:2]
    heat = cv2.resize(heat.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    heat = (heat - heat.min()) / (heat.max() - heat.min() + 1e-10)
    colour = cv2.applyColorMap(np.uint8(255 * heat), cv2.COLORMAP_JET)[..., ::-1]
    return cv2.addWeighted(colour, alpha, img_rgb, 1 - alpha, 0)


def main(argv=None) -> dict:
    args = parse_args(argv)
    from mmengine.dataset import Compose, pseudo_collate

    import mmmask  # noqa: F401  (registers mmmask modules)
    from mmmask.apis import list_images
    from mmmask.evaluation.explanation.ttame import average_drop, increase_in_confidence

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = build_model(cfg, args.checkpoint, args.device)
    fractions = [0.0, 0.5, 0.85]
    pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
    os.makedirs(args.out, exist_ok=True)

    paths = list_images(args.images)
    records, written = [], []
    for start in range(0, len(paths), args.batch_size):
        chunk = paths[start:start + args.batch_size]
        data = pseudo_collate([pipeline(dict(img_path=p)) for p in chunk])
        with torch.no_grad():
            batch = model.data_preprocessor(data, False)
            inputs = batch['inputs']
            out = model.explain(inputs)
            labels = out['labels']
            masked = None
            if not args.no_metrics:
                masked = model.masked_scores(inputs, out['c'], labels, fractions).cpu()
            probs = out['logits'].softmax(1).cpu()
        a = out['a'].cpu()
        for i, path in enumerate(chunk):
            img = data['inputs'][i].permute(1, 2, 0).numpy()
            # mmpretrain loads BGR; the preprocessor's to_rgb flips it for the model
            img_rgb = np.ascontiguousarray(img[..., ::-1]) if img.shape[-1] == 3 else img
            img_rgb = img_rgb.astype(np.uint8)
            classes = args.classes if args.classes else [int(labels[i])]
            panels = [img_rgb] + [overlay(img_rgb, a[i, k].numpy(), args.alpha) for k in classes]
            name = osp.splitext(osp.relpath(path, args.images if osp.isdir(args.images)
                                            else osp.dirname(path)))[0].replace(os.sep, '_')
            dst = osp.join(args.out, f'{name}_ttame.png')
            cv2.imwrite(dst, np.concatenate(panels, axis=1)[..., ::-1])
            written.append(dst)
            rec = dict(image=path, pred_label=int(labels[i]),
                       pred_score=float(probs[i, labels[i]]), explained=classes, png=dst)
            if masked is not None:
                rec['masked_scores'] = {f'{int(round(100 * (1 - f)))}%': float(v)
                                        for f, v in zip(fractions, masked[i])}
            records.append(rec)

    summary = dict(num_images=len(records))
    if not args.no_metrics:
        y = torch.tensor([r['pred_score'] for r in records])
        for f in fractions:
            key = f'{int(round(100 * (1 - f)))}%'
            o = torch.tensor([r['masked_scores'][key] for r in records])
            summary[f'AD@{key}'] = float(average_drop(y, o))
            summary[f'IC@{key}'] = float(increase_in_confidence(y, o))
    from mmmask.apis import write_tool_report
    print('T-TAME explanations:', len(written), 'PNG files in', args.out)
    return write_tool_report(osp.join(args.out, 'metrics.json'), summary, records,
                             'Explanation metrics')


if __name__ == '__main__':
    main()
