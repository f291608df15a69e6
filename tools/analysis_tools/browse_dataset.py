"""Save PNGs of a config's dataset after its pipeline, with annotations drawn by the task's visualizer.

    python tools/analysis_tools/browse_dataset.py CONFIG [--output-dir DIR] [--phase train|val|test]
                                                  [--num N] [--cfg-options ...]
"""
import argparse
import os
import os.path as osp

import mmcv
import mmmask  # noqa: F401
import numpy as np
from mmengine.config import Config, DictAction
from mmengine.registry import DATASETS, VISUALIZERS, init_default_scope


def to_image(inputs) -> np.ndarray:
    """``PackXInputs`` image tensor (C, H, W, BGR) to an RGB HxWx3 uint8 array."""
    img = inputs.permute(1, 2, 0).numpy()
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return mmcv.bgr2rgb(np.ascontiguousarray(img))


def main():
    parser = argparse.ArgumentParser(description='Browse a dataset: save annotated PNGs')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--output-dir', default='work_dirs/browse_dataset',
                        help='folder for the PNGs')
    parser.add_argument('--phase', default='train', choices=['train', 'val', 'test'])
    parser.add_argument('--num', type=int, default=8, help='number of samples to save')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmmask'))
    dataset = DATASETS.build(cfg[f'{args.phase}_dataloader'].dataset)
    vis_cfg = dict(cfg.get('visualizer', dict(type='Visualizer')))
    vis_cfg.update(name='browse_dataset', vis_backends=None, save_dir=None)
    visualizer = VISUALIZERS.build(vis_cfg)
    if hasattr(visualizer, 'dataset_meta'):
        visualizer.dataset_meta = dataset.metainfo
    os.makedirs(args.output_dir, exist_ok=True)
    for i in range(min(args.num, len(dataset))):
        item = dataset[i]
        img = to_image(item['inputs'])
        sample = item.get('data_samples')
        name = osp.splitext(osp.basename(sample.metainfo.get('img_path', f'{i:05d}')))[0] \
            if sample is not None else f'{i:05d}'
        out = osp.join(args.output_dir, f'{i:05d}_{name}.png')
        if sample is not None and type(visualizer).__name__ != 'Visualizer':
            visualizer.add_datasample(name, img, data_sample=sample, draw_pred=False,
                                      show=False, out_file=out)
        else:
            mmcv.imwrite(mmcv.rgb2bgr(img), out)
        print(out)


if __name__ == '__main__':
    main()
