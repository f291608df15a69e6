"""Convert official STDC checkpoints to mmmask's ``STDCNetS4`` (the PEM backbone).

    python tools/model_converters/stdc2mmmask.py SRC DST [--arch stdc1|stdc2]

SRC: a PEM (detectron2) checkpoint (``model_final.pth``: weights under ``model``, backbone under
``backbone.``; the head is dropped), a bare PEM ``D2STDCnet`` state dict, or an STDC-Seg ImageNet
checkpoint (``STDCNet813M_73.91.tar`` / ``STDCNet1446M_76.47.tar``: under ``state_dict``; the
classifier ``conv_last/fc/bn/linear`` is dropped). DST gets ``{'state_dict': {'backbone.*'},
'meta': ...}``, usable as ``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``.

The result is always checked against a freshly built ``STDCNetS4`` of the depth read from the
checkpoint; ``--arch`` checks it against the published variant instead (base 64). Missing keys,
extra keys and shape mismatches are reported and nothing is written (exit status 2).
"""
import argparse
import sys

import torch

from mmmask.models.backbones import STDCNetS4
from mmmask.models.converters import ConversionError, convert_stdc, stdc_arch_of, unwrap_state_dict
from mmmask.models.converters.common import check_complete, save_converted


def main() -> int:
    parser = argparse.ArgumentParser(description='Convert official STDC checkpoints to mmmask')
    parser.add_argument('src', help='official checkpoint (PEM .pth or STDC-Seg ImageNet .tar)')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--arch', choices=sorted(STDCNetS4.arch_zoo),
                        help='verify the result against this published variant')
    args = parser.parse_args()

    ckpt = torch.load(args.src, map_location='cpu', weights_only=False)
    state_dict = unwrap_state_dict(ckpt)
    try:
        converted = convert_stdc(state_dict)
        arch = stdc_arch_of(converted)
        if args.arch:
            what = f'STDCNetS4(arch={args.arch!r})'
            ref_model = STDCNetS4(arch=args.arch)
        else:
            what = f'STDCNetS4(**{arch})'
            try:
                ref_model = STDCNetS4(**arch)
            except ValueError as e:
                raise ConversionError(f'the checkpoint does not describe a valid STDC: {e}')
        ref = ref_model.state_dict()
        check_complete(converted, ref, what)
        extra = sorted(set(converted) - set(ref))
        if extra:
            raise ConversionError(f'the converted checkpoint does not fit {what}: {len(extra)} '
                                  f'extra key(s): {", ".join(extra[:20])}')
    except ConversionError as e:
        print(f'stdc2mmmask: {e}', file=sys.stderr)
        return 2
    save_converted({'backbone.' + k: v for k, v in converted.items()}, args.dst, args.src,
                   'stdc2mmmask', arch=arch)
    print(f'STDC base={arch["base"]}, layers={arch["layers"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
