"""ECO-M2F head and detector: Mask2Former with a gated early-exit encoder (arXiv 2404.15244).

* Step A (train the parent model): :class:`ECOMask2Former` with ``train_gate_only=False`` is a
  plain Mask2Former whose pixel decoder (:class:`EarlyExitMSDeformAttnPixelDecoder`,
  ``train_exit_mode='sample'``) exits at a randomly drawn depth every iteration.
* Step C (train the gate): ``train_gate_only=True`` freezes everything but the gate (parameters
  without gradients, modules kept in eval mode) and the loss is only
  :meth:`ECOMask2FormerHead.loss_gate`: the MSE between the gate's softmax over the exits and
  ``softmax(q_k − β·k)``, with the per-image PQs ``q_k`` of the derived dataset (step B) read from
  ``data_sample.metainfo['exit_utilities']`` (attached by ``mmmask.LoadExitUtilities``). Only the
  backbone and the level-0 input projection run (no grad): the decoder is not needed for it.
"""
from typing import Dict, List, Optional, Tuple

import torch
from mmdet.models.dense_heads import Mask2FormerHead
from mmdet.models.detectors import Mask2Former
from mmdet.structures import SampleList
from mmengine.registry import DefaultScope
from torch import Tensor

from ...registry import MODELS
from ..layers.eco_m2f import EarlyExitMSDeformAttnPixelDecoder, eco_gate_loss


@MODELS.register_module()
class ECOMask2FormerHead(Mask2FormerHead):
    """Mask2Former head with ECO-M2F's gate loss (step C).

    Args:
        gate_loss: ``beta`` (β of the utility ``u_k = q_k − β·k``; 0.0005/0.02 on COCO,
            0.003/0.01 on Cityscapes in the paper), ``loss_weight`` (1.0 as official) and
            ``temperature`` of the target softmax (1.0 as official).
        **kwargs: ``Mask2FormerHead`` arguments; ``pixel_decoder`` must build an
            :class:`EarlyExitMSDeformAttnPixelDecoder`
            (``type='mmmask.EarlyExitMSDeformAttnPixelDecoder'``).
    """

    def __init__(self, gate_loss: Optional[dict] = None, **kwargs) -> None:
        with DefaultScope.overwrite_default_scope('mmdet'):
            super().__init__(**kwargs)
        if not isinstance(self.pixel_decoder, EarlyExitMSDeformAttnPixelDecoder):
            raise TypeError(
                f'ECOMask2FormerHead needs pixel_decoder='
                "dict(type='mmmask.EarlyExitMSDeformAttnPixelDecoder', ...), got "
                f'{type(self.pixel_decoder).__name__}')
        gate_loss = dict(gate_loss or {})
        self.gate_beta = float(gate_loss.pop('beta', 0.0))
        self.gate_loss_weight = float(gate_loss.pop('loss_weight', 1.0))
        self.gate_temperature = float(gate_loss.pop('temperature', 1.0))
        if gate_loss:
            raise ValueError(f'unknown gate_loss keys {sorted(gate_loss)}: use beta, '
                             'loss_weight, temperature')

    def gate_utilities(self, batch_data_samples: SampleList, device) -> Tensor:
        """``(B, E)`` per-image PQs at every exit from the samples' metainfo."""
        rows = []
        for ds in batch_data_samples:
            if 'exit_utilities' not in ds.metainfo:
                raise KeyError(
                    'gate training needs per-image exit utilities: add '
                    "dict(type='mmmask.LoadExitUtilities', utilities_file=...) to the train "
                    "pipeline and 'exit_utilities' to PackDetInputs' meta_keys (the file comes "
                    'from tools/analysis_tools/eco_m2f_exit_pq.py)')
            rows.append(torch.as_tensor(ds.metainfo['exit_utilities'], dtype=torch.float32))
        return torch.stack(rows).to(device)

    def loss_gate(self, x: Tuple[Tensor], batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Step-C loss from the backbone features ``x``."""
        logits = self.pixel_decoder.gate_logits(list(x))
        utilities = self.gate_utilities(batch_data_samples, logits.device)
        loss = eco_gate_loss(logits, utilities, self.gate_beta, self.pixel_decoder.exits,
                             self.gate_temperature)
        with torch.no_grad():
            exits = logits.argmax(1).float() + self.pixel_decoder.exits[0]
        return dict(loss_gate=self.gate_loss_weight * loss, gate_mean_exit=exits.mean())


@MODELS.register_module()
class ECOMask2Former(Mask2Former):
    """Mask2Former with ECO-M2F's early-exit encoder (arXiv 2404.15244).

    Args:
        train_gate_only: step C — freeze everything except
            ``panoptic_head.pixel_decoder.gate`` and train it with the gate loss only.
        **kwargs: ``Mask2Former`` arguments; ``panoptic_head`` must be an
            :class:`ECOMask2FormerHead` (``type='mmmask.ECOMask2FormerHead'``).
    """

    def __init__(self, train_gate_only: bool = False, **kwargs) -> None:
        with DefaultScope.overwrite_default_scope('mmdet'):
            super().__init__(**kwargs)
        if not isinstance(self.panoptic_head, ECOMask2FormerHead):
            raise TypeError("ECOMask2Former needs panoptic_head=dict(type='mmmask."
                            f"ECOMask2FormerHead', ...), got {type(self.panoptic_head).__name__}")
        self.train_gate_only = train_gate_only
        if train_gate_only:
            for name, p in self.named_parameters():
                p.requires_grad_(self._is_gate(name))

    @staticmethod
    def _is_gate(name: str) -> bool:
        return name.startswith('panoptic_head.pixel_decoder.gate.')

    @property
    def pixel_decoder(self) -> EarlyExitMSDeformAttnPixelDecoder:
        return self.panoptic_head.pixel_decoder

    def train(self, mode: bool = True) -> 'ECOMask2Former':
        super().train(mode)
        if mode and self.train_gate_only:  # frozen parts keep their eval behaviour (BN stats)
            for module in self.modules():
                module.training = False
            self.training = True
            self.panoptic_head.training = True
            self.pixel_decoder.gate.train()
        return self

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        if not self.train_gate_only:
            return super().loss(batch_inputs, batch_data_samples)
        with torch.no_grad():
            x = self.extract_feat(batch_inputs)
        return self.panoptic_head.loss_gate(x, batch_data_samples)

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Mask2Former inference; each sample's metainfo gets ``eco_exit`` (encoder layers run)."""
        results = super().predict(batch_inputs, batch_data_samples, rescale=rescale)
        exits: List[int] = self.pixel_decoder.last_exits.tolist()
        for ds, e in zip(results, exits):
            ds.set_metainfo(dict(eco_exit=int(e)))
        return results
