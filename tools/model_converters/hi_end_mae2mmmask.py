"""Convert official Hi-End-MAE checkpoints (github.com/FengheTan9/Hi-End-MAE) to mmmask keys.

    python tools/model_converters/hi_end_mae2mmmask.py SRC DST [--backbone-only] [--drop-3d]

The official models are 3-D (Conv3d patch embedding, 3-D sin-cos grids); mmmask's Hi-End-MAE is
the 2-D transfer, so only the dimension-free weights (transformer blocks, norms, cls/mask tokens,
decoder projections and blocks) can be reused by a 2-D model: pass ``--drop-3d`` to leave the 3-D
tensors out (they keep their official shapes otherwise, e.g. for the 3-D parity test). DST gets
``{'state_dict': ..., 'meta': ...}`` with ``backbone.*`` and ``neck.*`` keys.
"""
import argparse
import sys

from mmmask.models.converters import ConversionError, convert_hi_end_mae
from mmmask.models.converters.common import load_official_checkpoint, save_converted


def main() -> int:
    parser = argparse.ArgumentParser(description='Convert official Hi-End-MAE checkpoints')
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--backbone-only', action='store_true', help='keep only backbone.*')
    parser.add_argument('--drop-3d', action='store_true',
                        help='drop the 3-D patch embedding and 3-D position embeddings')
    args = parser.parse_args()
    try:
        converted = convert_hi_end_mae(load_official_checkpoint(args.src),
                                       backbone_only=args.backbone_only, drop_3d=args.drop_3d)
    except ConversionError as e:
        print(f'hi_end_mae2mmmask: {e}', file=sys.stderr)
        return 2
    save_converted(converted, args.dst, args.src, 'hi_end_mae2mmmask', dims='3d' if not
                   args.drop_3d else '3d-free')
    return 0


if __name__ == '__main__':
    sys.exit(main())
