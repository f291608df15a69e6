"""ECO-M2F: a gated early-exit MSDeformAttn encoder for Mask2Former (Yao et al., arXiv 2404.15244).

The pixel decoder of Mask2Former runs a 6-layer multi-scale deformable-attention encoder. ECO-M2F
lets each image leave that encoder after ``e`` layers, ``e`` ∈ {K − G, …, K} (K = 6 layers, G = 4
gates, so 2…6): a small gate, evaluated once on the *projected encoder input*, predicts ``e``.

* :class:`ExitGate` — mean-pooled level-0 (stride-32) tokens → Linear(C → G + 1) logits.
* :class:`EarlyExitMSDeformAttnPixelDecoder` — mmdet's ``MSDeformAttnPixelDecoder`` that runs
  only the first ``e`` encoder layers, per image; exits are sampled (step A, "weighted stochastic
  depth"), fixed (step B / per-exit evaluation), gated (inference, step C) or the full depth.
* :func:`eco_gate_loss` — the step-C loss: MSE between the gate's softmax over the exit axis and
  the soft targets ``softmax(q_k − β·k)`` built from per-image PQs ``q_k`` (the derived dataset).
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.layers import MSDeformAttnPixelDecoder
from torch import Tensor, nn

from ...registry import MODELS

#: exit modes of :class:`EarlyExitMSDeformAttnPixelDecoder`.
EXIT_MODES = ('full', 'fixed', 'gated', 'sample')


@MODELS.register_module()
class ExitGate(nn.Module):
    """ECO-M2F gating network (paper Sec. 3.3): predicts how many encoder layers an image needs.

    Args:
        in_channels: token width C of the encoder input (256 in Mask2Former).
        num_gates: number of gated exits G; the gate outputs ``G + 1`` logits, one per possible
            exit ``K − G, …, K``.
    """

    def __init__(self, in_channels: int = 256, num_gates: int = 4) -> None:
        super().__init__()
        if num_gates < 0:
            raise ValueError(f'num_gates={num_gates} must be >= 0')
        self.num_gates = num_gates
        self.fc = nn.Linear(in_channels, num_gates + 1)
        self.init_weights()

    def init_weights(self) -> None:
        nn.init.xavier_uniform_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, tokens: Tensor) -> Tensor:
        """``tokens``: ``(B, N0, C)`` level-0 encoder-input tokens → ``(B, G + 1)`` logits."""
        return self.fc(tokens.mean(dim=1))


def eco_gate_targets(utilities: Tensor, beta: float, exits: Sequence[int],
                     temperature: float = 1.0) -> Tensor:
    """Soft exit targets ``softmax_k((q_k − β·k) / T)`` per image (over the exit axis, dim 1).

    ``utilities``: ``(B, E)`` per-image PQ ``q_k`` at each exit (PQ as a fraction in [0, 1], as in
    the official derived dataset); ``exits``: the E exit depths k. The official code subtracts
    ``β·(1…E)`` instead of ``β·(K−G…K)``: softmax is shift-invariant, so the targets are identical.
    """
    k = torch.as_tensor(list(exits), dtype=utilities.dtype, device=utilities.device)
    if utilities.shape[-1] != k.numel():
        raise ValueError(f'utilities have {utilities.shape[-1]} exits per image but the gate has '
                         f'{k.numel()} ({list(exits)}): rebuild the derived dataset with '
                         'tools/analysis_tools/eco_m2f_exit_pq.py for this model')
    return torch.softmax((utilities - beta * k) / temperature, dim=1)


def eco_gate_loss(gate_logits: Tensor, utilities: Tensor, beta: float, exits: Sequence[int],
                  temperature: float = 1.0) -> Tensor:
    """ECO-M2F step-C loss: ``MSE(softmax(logits, dim=1), softmax(q − β·k, dim=1))``.

    Both softmaxes are over the *exit* axis. The official code takes them over ``dim=0`` (the
    batch axis; `criterion.py` ``loss_gates`` and ``maskformer_model.py``), which makes the loss a
    constant at batch 1 and couples the images of a batch; this is the fixed form.
    """
    targets = eco_gate_targets(utilities.to(gate_logits.dtype), beta, exits, temperature)
    return F.mse_loss(torch.softmax(gate_logits, dim=1), targets)


@MODELS.register_module()
class EarlyExitMSDeformAttnPixelDecoder(MSDeformAttnPixelDecoder):
    """mmdet's MSDeformAttn pixel decoder with ECO-M2F's gated early exits (arXiv 2404.15244).

    Every image runs the first ``e`` encoder layers, ``e`` ∈ ``self.exits`` = (K − G, …, K). The
    outputs are the encoder states of each image after its own ``e`` layers; the FPN level and the
    mask features follow as in Mask2Former. Images of a batch may exit at different depths: the
    encoder runs up to the deepest exit and drops an image from the batch once it has left (the
    deformable attention, the LayerNorms and the FFN act per image, so this equals running each
    image alone).

    Exit modes (``train_exit_mode`` while training, ``exit_mode`` otherwise; :meth:`set_exit_mode`
    changes ``exit_mode``):

    * ``'full'``: all K layers (the gate is still evaluated and its logits recorded).
    * ``'fixed'``: ``fixed_exit`` layers for every image (step B: per-exit evaluation).
    * ``'gated'``: per-image ``argmax(gate) + K − G`` (inference, and validation of step C).
    * ``'sample'`` (training only, step A): one exit per iteration drawn with probabilities
      proportional to ``exit_sampling_weights`` — "weighted stochastic depth", deeper exits drawn
      more often. The default weights are the exit depths themselves (2:3:4:5:6), the expected
      value of the official loss scaling by depth (the official sampling code is commented out
      and scales the loss by the depth instead; see ``configs/eco_m2f/README.md``).

    After each forward ``last_exits`` (``(B,)`` long) holds the exits used and
    ``last_gate_logits`` the ``(B, G + 1)`` gate logits.

    Args:
        num_gates: G, the number of gated exits (4 in the paper: exits 2…6 of 6 layers).
        exit_mode: exit mode outside training.
        train_exit_mode: exit mode while training (``'sample'`` for step A).
        fixed_exit: depth for ``'fixed'``.
        exit_sampling_weights: G + 1 non-negative weights of exits K − G … K for ``'sample'``;
            None → the exit depths.
        official_batch_argmax: reproduce the released code's ``gates.argmax()`` without a
            dimension in ``'gated'`` mode: the flattened ``(B, G + 1)`` argmax + K − G, capped at
            K, is used for the whole batch (correct only at batch 1; for parity checks).
        **kwargs: ``MSDeformAttnPixelDecoder`` arguments.
    """

    def __init__(self,
                 num_gates: int = 4,
                 exit_mode: str = 'gated',
                 train_exit_mode: str = 'sample',
                 fixed_exit: Optional[int] = None,
                 exit_sampling_weights: Optional[Sequence[float]] = None,
                 official_batch_argmax: bool = False,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_layers = len(self.encoder.layers)
        if not 0 <= num_gates < self.num_layers:
            raise ValueError(f'num_gates={num_gates} must be in [0, {self.num_layers - 1}] for a '
                             f'{self.num_layers}-layer encoder')
        self.num_gates = num_gates
        self.exits = tuple(range(self.num_layers - num_gates, self.num_layers + 1))
        self.gate = ExitGate(self.encoder.embed_dims, num_gates)
        if exit_sampling_weights is None:
            exit_sampling_weights = [float(e) for e in self.exits]
        if len(exit_sampling_weights) != len(self.exits) or min(exit_sampling_weights) < 0 \
                or sum(exit_sampling_weights) <= 0:
            raise ValueError(f'exit_sampling_weights={list(exit_sampling_weights)} must be '
                             f'{len(self.exits)} non-negative weights (exits {self.exits}) with '
                             'a positive sum')
        self.exit_sampling_weights = [float(w) for w in exit_sampling_weights]
        self.official_batch_argmax = official_batch_argmax
        self.fixed_exit: Optional[int] = None
        self.exit_mode = 'full'
        self.set_exit_mode(exit_mode, fixed_exit)
        if train_exit_mode not in EXIT_MODES:
            raise ValueError(f'train_exit_mode={train_exit_mode!r} is not one of {EXIT_MODES}')
        if train_exit_mode == 'fixed' and fixed_exit is None:
            raise ValueError("train_exit_mode='fixed' needs fixed_exit")
        self.train_exit_mode = train_exit_mode
        self.last_exits: Optional[Tensor] = None
        self.last_gate_logits: Optional[Tensor] = None

    # ------------------------------------------------------------------------------ modes
    def set_exit_mode(self, mode: str, fixed_exit: Optional[int] = None) -> None:
        """Set the exit mode used outside training (``'full'``, ``'fixed'``, ``'gated'``)."""
        if mode not in EXIT_MODES or mode == 'sample':
            raise ValueError(f"exit_mode={mode!r} must be one of 'full', 'fixed', 'gated' "
                             "('sample' is a training mode: use train_exit_mode)")
        if fixed_exit is not None:
            self._check_exit(fixed_exit)
            self.fixed_exit = int(fixed_exit)
        if mode == 'fixed' and self.fixed_exit is None:
            raise ValueError("exit_mode='fixed' needs fixed_exit (one of "
                             f'{list(self.exits)})')
        self.exit_mode = mode

    def _check_exit(self, e: int) -> None:
        if int(e) not in self.exits:
            raise ValueError(f'exit {e} is not one of this encoder\'s exits {list(self.exits)}')

    def exit_statistics(self, exits: Optional[Tensor] = None) -> dict:
        """Mean depth and per-exit counts of ``exits`` (default ``last_exits``)."""
        exits = self.last_exits if exits is None else exits
        if exits is None:
            return dict(mean_layers=float('nan'), counts={e: 0 for e in self.exits})
        exits = exits.detach().cpu()
        return dict(mean_layers=float(exits.float().mean()),
                    counts={e: int((exits == e).sum()) for e in self.exits})

    # ------------------------------------------------------------------------------ gate
    def project_inputs(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """``input_convs`` (1×1 conv + GN) of the encoder levels, lowest resolution first."""
        return [self.input_convs[i](feats[self.num_input_levels - i - 1])
                for i in range(self.num_encoder_levels)]

    def gate_logits(self, feats: Sequence[Tensor]) -> Tensor:
        """Gate logits from the backbone features alone (projects only level 0; for step C)."""
        level0 = self.input_convs[0](feats[self.num_input_levels - 1])
        return self.gate(level0.flatten(2).transpose(1, 2))

    def choose_exits(self, gate_logits: Tensor) -> Tensor:
        """``(B,)`` exits for the current mode from the ``(B, G + 1)`` gate logits."""
        batch_size = gate_logits.shape[0]
        mode = self.train_exit_mode if self.training else self.exit_mode
        device = gate_logits.device
        first = self.exits[0]
        if mode == 'full':
            return torch.full((batch_size, ), self.num_layers, dtype=torch.long, device=device)
        if mode == 'fixed':
            return torch.full((batch_size, ), self.fixed_exit, dtype=torch.long, device=device)
        if mode == 'sample':
            w = torch.tensor(self.exit_sampling_weights)
            e = self.exits[int(torch.multinomial(w / w.sum(), 1))]
            return torch.full((batch_size, ), e, dtype=torch.long, device=device)
        if self.official_batch_argmax:
            flat = int(gate_logits.detach().argmax())  # index into the flattened (B, G+1) tensor
            e = min(flat + first, self.num_layers)
            return torch.full((batch_size, ), e, dtype=torch.long, device=device)
        return gate_logits.detach().argmax(dim=1) + first

    # ------------------------------------------------------------------------------ forward
    def forward(self, feats: List[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        """Same inputs/outputs as ``MSDeformAttnPixelDecoder.forward``, with per-image exits."""
        batch_size = feats[0].shape[0]
        projected = self.project_inputs(feats)
        tokens, pos_list, ref_list, shapes = [], [], [], []
        for i, feat_projected in enumerate(projected):
            level_idx = self.num_input_levels - i - 1
            h, w = feat_projected.shape[-2:]
            no_pad = feat_projected.new_zeros((batch_size, h, w), dtype=torch.bool)
            pos = self.postional_encoding(no_pad) + self.level_encoding.weight[i].view(1, -1, 1, 1)
            # pixel centres ((x + 0.5) / W, (y + 0.5) / H), in (x, y) order
            ref = self.point_generator.single_level_grid_priors(
                (h, w), level_idx, device=feat_projected.device)
            ref = ref / ref.new_tensor([w, h]).mul(self.strides[level_idx])
            tokens.append(feat_projected.flatten(2).transpose(1, 2))
            pos_list.append(pos.flatten(2).transpose(1, 2))
            ref_list.append(ref)
            shapes.append((h, w))
        src = torch.cat(tokens, dim=1)
        query_pos = torch.cat(pos_list, dim=1)
        spatial_shapes = torch.as_tensor(shapes, dtype=torch.long, device=src.device)
        level_start_index = torch.cat(
            (spatial_shapes.new_zeros((1, )), spatial_shapes.prod(1).cumsum(0)[:-1]))
        num_tokens = [h * w for h, w in shapes]
        reference_points = torch.cat(ref_list, dim=0)[None, :, None].repeat(
            batch_size, 1, self.num_encoder_levels, 1)
        valid_ratios = reference_points.new_ones((batch_size, self.num_encoder_levels, 2))
        padding_mask = src.new_zeros(src.shape[:2], dtype=torch.bool)

        # the gate: mean of the level-0 (lowest resolution) projected tokens, before any layer
        gate_logits = self.gate(src[:, :num_tokens[0]])
        exits = self.choose_exits(gate_logits)
        self.last_gate_logits = gate_logits
        self.last_exits = exits

        memory = self._run_encoder(src, query_pos, padding_mask, spatial_shapes,
                                   level_start_index, valid_ratios, reference_points, exits)

        outs = [
            x.transpose(1, 2).reshape(batch_size, -1, h, w)
            for x, (h, w) in zip(torch.split(memory, num_tokens, dim=1), shapes)
        ]
        for i in range(self.num_input_levels - self.num_encoder_levels - 1, -1, -1):
            cur_feat = self.lateral_convs[i](feats[i])
            y = cur_feat + F.interpolate(
                outs[-1], size=cur_feat.shape[-2:], mode='bilinear', align_corners=False)
            outs.append(self.output_convs[i](y))
        return self.mask_feature(outs[-1]), outs[:self.num_outs]

    def _run_encoder(self, src: Tensor, query_pos: Tensor, padding_mask: Tensor,
                     spatial_shapes: Tensor, level_start_index: Tensor, valid_ratios: Tensor,
                     reference_points: Tensor, exits: Tensor) -> Tensor:
        """Run encoder layers until every image has reached its exit; per-image outputs."""
        max_exit = int(exits.max())
        idx = torch.arange(src.shape[0], device=src.device)
        query = src
        done_idx: List[Tensor] = []
        done_out: List[Tensor] = []
        for depth, layer in enumerate(self.encoder.layers[:max_exit], start=1):
            query = layer(
                query=query,
                query_pos=query_pos[idx],
                key_padding_mask=padding_mask[idx],
                spatial_shapes=spatial_shapes,
                level_start_index=level_start_index,
                valid_ratios=valid_ratios[idx],
                reference_points=reference_points[idx])
            leaving = exits[idx] == depth
            if bool(leaving.all()):
                done_idx.append(idx)
                done_out.append(query)
                break
            if bool(leaving.any()):
                done_idx.append(idx[leaving])
                done_out.append(query[leaving])
                idx, query = idx[~leaving], query[~leaving]
        if len(done_out) == 1:
            return done_out[0]
        order = torch.argsort(torch.cat(done_idx))
        return torch.cat(done_out, dim=0)[order]

    def init_weights(self) -> None:
        super().init_weights()
        self.gate.init_weights()

