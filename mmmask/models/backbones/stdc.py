"""STDC backbone that also returns its stride-4 feature, as PEM uses it.

STDC: "Rethinking BiSeNet For Real-time Semantic Segmentation" (Fan et al., CVPR 2021,
arXiv:2104.13188; official code github.com/MichaelFan01/STDC-Seg). PEM: "PEM: Prototype-based
Efficient MaskFormer for Image Segmentation" (Cavagnero et al., CVPR 2024, arXiv:2402.19422;
official code github.com/NiccoloCavagnero/PEM, ``pem/modeling/backbone/stdc.py``), which feeds the
four maps res2..res5 (strides 4/8/16/32) of STDC1/STDC2 to its pixel decoder.

The modules are mmseg's: :class:`mmseg.models.backbones.STDCNet` with ``bottleneck_type='cat'``
computes what the official STDC / PEM network computes, operation for operation (on the PEM
parity fixture the four outputs are bit-identical):

* every plain conv is conv (no bias, padding k//2) → BN → ReLU;
* a STDC module concatenates out/2, out/4, out/8, out/8 channels (``block_num=4``), first branch
  first; in a stride-2 module the 1×1 branch goes through a depthwise 3×3 stride-2 conv + BN
  (no ReLU) before the next conv, and is 3×3/s2/p1 average-pooled (padding counted) for the concat.

mmseg's class only returns the three STDC stages (strides 8/16/32) and only knows the two
published depth layouts; this subclass returns the stride-4 stem output too, takes any ``layers``
and adds ``out_indices``/``frozen_stages``/``norm_eval``. Official checkpoints convert with
:func:`mmmask.models.converters.convert_stdc` (``tools/model_converters/stdc2mmmask.py``).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmseg.models.backbones import STDCNet
from torch import Tensor, nn

from ...registry import MODELS
from .base import FrozenStagesMixin


@MODELS.register_module()
class STDCNetS4(FrozenStagesMixin, STDCNet):
    """STDC1/STDC2 returning res2..res5 (strides 4/8/16/32), as the PEM backbone does.

    Channels of res2..res5 are ``base``, ``4·base``, ``8·base``, ``16·base`` (64/256/512/1024 for
    the published ``base=64``). Module names are mmseg's (``stages.0``/``stages.1``: the two
    stride-2 stem convs; ``stages.2..4``: the STDC stages), so mmseg STDC checkpoints load as is.

    Args:
        arch: ``'stdc1'`` (layers [2, 2, 2], STDCNet813M) or ``'stdc2'`` ([4, 5, 3],
            STDCNet1446M); ignored when ``layers`` is given.
        base: channels of the stride-4 stem output.
        layers: STDC modules per stage (three stages); overrides ``arch``.
        block_num: convs per STDC module (official: 4).
        in_channels: input image channels.
        out_indices: outputs to return, indices into res2..res5 (negative ones allowed).
        norm_cfg: norm of every conv (official: BN; PEM never passes its ``STDC.NORM``).
        frozen_stages: -1 freezes nothing; k ≥ 0 freezes the stem (everything up to res2) and
            the first k STDC stages.
        norm_eval: keep the norm layers in eval mode while training.
        init_cfg: e.g. ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
    """
    arch_zoo: Dict[str, List[int]] = {'stdc1': [2, 2, 2], 'stdc2': [4, 5, 3]}
    num_outs = 4

    def __init__(self, arch: str = 'stdc1', base: int = 64,
                 layers: Optional[Sequence[int]] = None, block_num: int = 4,
                 in_channels: int = 3, out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3),
                 norm_cfg: dict = dict(type='BN', requires_grad=True), frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        layers = self._parse_layers(arch, layers)
        if base < 2 or base % 2:
            raise ValueError(f'STDCNetS4: base must be a positive even number, got {base}')
        if block_num < 2:
            raise ValueError(f'STDCNetS4: block_num must be at least 2, got {block_num}')
        if (4 * base) % 2 ** (block_num - 1):
            raise ValueError(f'STDCNetS4: 4·base={4 * base} channels cannot be split over '
                             f'block_num={block_num} convs')
        indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        for i in indices:
            if not -self.num_outs <= i < self.num_outs:
                raise ValueError(f'STDCNetS4: out_indices {indices} out of range for the '
                                 f'{self.num_outs} outputs res2..res5')
        if not -1 <= frozen_stages <= len(layers):
            raise ValueError(f'STDCNetS4: frozen_stages must be in [-1, {len(layers)}], '
                             f'got {frozen_stages}')
        # mmseg reads the per-stage module strides from ``self.arch_settings[stdc_type]`` and only
        # ships STDC1/STDC2; an instance-level table lets any ``layers`` through.
        stdc_type = f'layers={layers}'
        self.arch_settings = {stdc_type: [(2, ) + (1, ) * (n - 1) for n in layers]}
        super().__init__(
            stdc_type=stdc_type, in_channels=in_channels,
            channels=(base // 2, base, base * 4, base * 8, base * 16), bottleneck_type='cat',
            norm_cfg=norm_cfg, act_cfg=dict(type='ReLU'), num_convs=block_num,
            with_final_conv=False, init_cfg=init_cfg)
        self.layers = layers
        self.base = base
        self.out_indices = sorted(set(i % self.num_outs for i in indices))
        self.out_channels = [base, base * 4, base * 8, base * 16]
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self._freeze_stages()

    @classmethod
    def _parse_layers(cls, arch: str, layers: Optional[Sequence[int]]) -> List[int]:
        if layers is None:
            if arch not in cls.arch_zoo:
                raise ValueError(f'Unknown STDC arch {arch!r}; valid: {sorted(cls.arch_zoo)} '
                                 '(or pass layers=[n1, n2, n3])')
            return list(cls.arch_zoo[arch])
        layers = list(layers)
        if len(layers) != 3 or any(int(n) != n or n < 1 for n in layers):
            raise ValueError(f'STDCNetS4: layers must be three positive ints, got {layers}')
        return [int(n) for n in layers]

    def _output_modules(self, index: int) -> List[nn.Module]:
        """Modules computing output ``index`` from the previous one (res2: the two stem convs)."""
        return [self.stages[0], self.stages[1]] if index == 0 else [self.stages[index + 1]]

    def _freeze_stages(self) -> None:
        for i in range(self.frozen_stages + 1):
            for m in self._output_modules(i):
                m.eval()
                for p in m.parameters():
                    p.requires_grad = False

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        outs = []
        for i in range(self.out_indices[-1] + 1):
            for m in self._output_modules(i):
                x = m(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
