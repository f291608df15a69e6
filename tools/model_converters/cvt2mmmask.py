"""Convert official CvT checkpoints (github.com/leoxiaobin/CvT) to mmmask.

    python tools/model_converters/cvt2mmmask.py SRC DST [--backbone-only] [--no-final-norm]
        [--config CFG]

SRC: an official model-zoo file (e.g. ``CvT-13-224x224-IN-1k.pth``, a bare
``ConvolutionalVisionTransformer`` state dict; a ``module.`` prefix or a ``state_dict``/``model``
wrapper is accepted). DST gets ``{'state_dict': ..., 'meta': ...}`` with ``backbone.*``
(:class:`mmmask.CvT`) and ``head.fc.*`` (mmpretrain ``LinearClsHead``) — usable as ``load_from``
of a CvT classification config, or with ``--backbone-only`` (add ``--no-final-norm`` for a
``out_type='featmap'`` dense-prediction backbone) as ``init_cfg=dict(type='Pretrained',
checkpoint=DST, prefix='backbone.')``. ``--config`` checks the result against the model that
config builds (keys and shapes). The arch read from the weights is printed.
"""
import argparse
import sys

from mmmask.models.converters import ConversionError
from mmmask.models.converters.common import (check_against_config, load_official_checkpoint,
                                             save_converted)
from mmmask.models.converters.cvt import convert_cvt, cvt_arch_of


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description='Convert official CvT checkpoints to mmmask')
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--backbone-only', action='store_true',
                        help='keep only backbone.* (for init_cfg Pretrained)')
    parser.add_argument('--no-final-norm', action='store_true',
                        help="also drop the final norm (backbones with out_type='featmap')")
    parser.add_argument('--config', help='verify the result against the model of this config')
    args = parser.parse_args(argv)

    state_dict = load_official_checkpoint(args.src)
    try:
        arch = cvt_arch_of(state_dict)
        converted = convert_cvt(state_dict, with_head=not args.backbone_only,
                                with_final_norm=not args.no_final_norm)
        if args.config and not args.backbone_only:
            check_against_config(converted, args.config)
    except ConversionError as e:
        print(f'cvt2mmmask: {e}', file=sys.stderr)
        return 2
    print(f'arch read from the weights: {arch}')
    save_converted(converted, args.dst, args.src, 'cvt2mmmask', arch=arch)
    return 0


if __name__ == '__main__':
    sys.exit(main())
