"""Convert an official DVT stage-2 denoiser checkpoint (Jiawei-Yang/Denoising-ViT,
``main_denoiser.py``: ``{'denoiser': {...}}``) to mmmask keys.

Usage:
    python tools/model_converters/dvt2mmmask.py SRC DST [--prefix backbone.denoiser.] \
        [--config CONFIG]

``--prefix ''`` gives a bare :class:`mmmask.DVTDenoiser` state dict; the default
``backbone.denoiser.`` fits a segmentor whose backbone is :class:`mmmask.DenoisedViT` (load it
with ``load_from`` after the frozen ViT weights, or merge). ``--config`` checks the converted keys
and shapes against the model that config builds (ViT keys excluded).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmmask.models.converters.common import (ConversionError,  # noqa: E402
                                             load_official_checkpoint, save_converted)
from mmmask.models.converters.dvt import convert_dvt_denoiser  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='official DVT denoiser -> mmmask')
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='output .pth')
    parser.add_argument('--prefix', default='backbone.denoiser.',
                        help="key prefix ('' for a bare DVTDenoiser)")
    parser.add_argument('--config', default=None,
                        help='check the keys against the denoiser of this config')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if not osp.isfile(args.src):
        raise SystemExit(f'no such checkpoint: {args.src}')
    converted = convert_dvt_denoiser(load_official_checkpoint(args.src), prefix=args.prefix)
    if args.config:
        from mmmask.apis import build_model_from_cfg, load_config
        cfg = load_config(args.config, {'model.backbone.init_cfg': None})
        ref = {k: v for k, v in build_model_from_cfg(cfg).state_dict().items()
               if k.startswith(args.prefix) and '.vit.' not in '.' + k}
        missing = sorted(set(ref) - set(converted))
        bad = sorted(k for k in set(ref) & set(converted) if ref[k].shape != converted[k].shape)
        extra = sorted(set(converted) - set(ref))
        if missing or bad or extra:
            raise ConversionError(f'converted keys do not fit {args.config}: missing {missing[:5]}'
                                  f', shape mismatch {bad[:5]}, extra {extra[:5]}')
    save_converted(converted, args.dst, args.src, 'dvt2mmmask')


if __name__ == '__main__':
    main()
