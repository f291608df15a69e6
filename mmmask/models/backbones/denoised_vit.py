"""``DenoisedViT``: a frozen ViT followed by the DVT stage-2 denoiser (Yang et al., ECCV 2024).

``dict(type='mmmask.DenoisedViT', vit=dict(type='mmpretrain.VisionTransformer', arch='base',
img_size=518, patch_size=14, ...), denoiser=dict(num_blocks=1))`` builds the ViT (forced to
``out_type='featmap'``), freezes it, and passes its last-layer feature map through a
:class:`mmmask.DVTDenoiser` (feature width and training grid filled in from the ViT). Outputs are
``[B, C, h, w]`` maps (a tuple, one per ``out_indices`` entry), so mmseg decode heads work on top.
As in the official ``Denoiser(vit=...)``, only the last layer is denoised (outputs of earlier
layers pass through raw); the denoiser is the trainable part (``freeze_vit=True``).

Keys: ``vit.*`` (mmpretrain ``VisionTransformer``) and ``denoiser.*`` (official denoiser
checkpoints convert with :func:`mmmask.models.converters.convert_dvt_denoiser`,
``prefix='backbone.denoiser.'``).
"""
import copy
from typing import Optional, Sequence, Tuple, Union

from mmengine.model import BaseModule
from torch import Tensor

from ...registry import MODELS
from ..converters.dvt import load_dvt_denoiser_checkpoint
from ..layers.dvt import DVTDenoiser

__all__ = ['DenoisedViT']


@MODELS.register_module()
class DenoisedViT(BaseModule):
    """Frozen ViT + DVT denoiser on its last layer.

    Args:
        vit: config of an mmpretrain-style ViT with ``out_type``/``out_indices``/
            ``patch_resolution`` (``mmpretrain.VisionTransformer`` and its subclasses).
        denoiser: :class:`DVTDenoiser` kwargs; ``feat_dim`` defaults to the ViT width and
            ``noise_map_size`` to its ``patch_resolution`` (the official training grid: 37x37 at
            518 px for DINOv2-B/14). None: no denoiser (raw features, for a baseline probe).
        out_indices: ViT layers to output (overrides the one in ``vit``); default the last.
        freeze_vit: keep the ViT frozen and in eval mode (official setting).
        denoiser_checkpoint: stage-2 weights loaded by :meth:`init_weights` (after the ViT's own
            ``init_cfg``): an official ``main_denoiser.py`` checkpoint or a converted / mmmask
            one (see :func:`mmmask.models.converters.load_dvt_denoiser_checkpoint`).
    """

    def __init__(self, vit: dict, denoiser: Optional[dict] = dict(num_blocks=1),
                 out_indices: Union[int, Sequence[int]] = -1, freeze_vit: bool = True,
                 denoiser_checkpoint: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        vit = copy.deepcopy(vit)
        vit['out_type'] = 'featmap'
        vit['out_indices'] = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        self.vit = MODELS.build(vit)
        if not hasattr(self.vit, 'layers') or not hasattr(self.vit, 'patch_resolution'):
            raise TypeError(f'DenoisedViT needs an mmpretrain-style ViT (layers, patch_resolution)'
                            f', got {type(self.vit).__name__}')
        self.num_layers = len(self.vit.layers)
        self.freeze_vit = freeze_vit
        self.denoiser_checkpoint = denoiser_checkpoint
        if denoiser is not None:
            denoiser = dict(denoiser)
            denoiser.setdefault('feat_dim', self.vit.embed_dims)
            denoiser.setdefault('noise_map_size', tuple(self.vit.patch_resolution))
            denoiser.pop('type', None)
            self.denoiser = DVTDenoiser(**denoiser)
        else:
            self.denoiser = None
        if freeze_vit:
            for p in self.vit.parameters():
                p.requires_grad_(False)

    def init_weights(self) -> None:
        super().init_weights()
        if self.denoiser_checkpoint is not None:
            if self.denoiser is None:
                raise ValueError('denoiser_checkpoint given but denoiser=None')
            self.denoiser.load_state_dict(load_dvt_denoiser_checkpoint(self.denoiser_checkpoint))

    @property
    def out_indices(self) -> Sequence[int]:
        return list(self.vit.out_indices)

    def train(self, mode: bool = True) -> 'DenoisedViT':
        super().train(mode)
        if self.freeze_vit:
            self.vit.eval()
        return self

    def forward_raw_and_denoised(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Last-layer ``[B, C, h, w]`` map before and after the denoiser."""
        outs = self(x, _raw=True)
        return outs[-1], (self.denoiser.forward_featmap(outs[-1])
                          if self.denoiser is not None else outs[-1])

    def forward(self, x: Tensor, _raw: bool = False) -> Tuple[Tensor, ...]:
        outs = list(self.vit(x))
        if self.vit.out_type == 'featmap' and outs and outs[0].dim() != 4:
            raise RuntimeError('the ViT did not return [B, C, h, w] feature maps')
        if _raw or self.denoiser is None:
            return tuple(outs)
        for i, layer in enumerate(self.out_indices):
            if layer == self.num_layers - 1:
                outs[i] = self.denoiser.forward_featmap(outs[i])
        return tuple(outs)
