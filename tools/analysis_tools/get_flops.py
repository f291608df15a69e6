"""Count FLOPs and parameters of a config's model (mmengine's counter).

    python tools/analysis_tools/get_flops.py CONFIG [--shape H W] [--cfg-options ...]
"""
import argparse

import mmmask  # noqa: F401
import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.config import DictAction

from mmmask.apis import build_model_from_cfg, dummy_inputs, load_config
from mmmask.apis.model_inputs import forward_tensor


class _TensorForward(torch.nn.Module):
    """Exposes ``mode='tensor'`` as a plain ``forward(x)`` for the counter."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return forward_tensor(self.model, x)


def main():
    parser = argparse.ArgumentParser(description='Get a model\'s FLOPs and parameters')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--shape', type=int, nargs='+', default=[224, 224],
                        help='input size: H W (or C H W)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()

    cfg = load_config(args.config, args.cfg_options)
    model = build_model_from_cfg(cfg)
    inputs = dummy_inputs(args.shape)
    with torch.no_grad():
        info = get_model_complexity_info(_TensorForward(model), inputs=(inputs, ),
                                         show_table=True, show_arch=False)
    print(info['out_table'])
    split = '=' * 40
    print(f'{split}\nInput shape: {tuple(inputs.shape[1:])}\nFlops: {info["flops_str"]}\n'
          f'Params: {info["params_str"]}\n{split}')
    print('Counted with mmengine.analysis (fvcore-style: one multiply-add = one FLOP); operators '
          'it cannot count are listed above as warnings.')


if __name__ == '__main__':
    main()
