"""HPM: Hard Patches Mining for masked image modeling (Wang et al., CVPR 2023,
https://arxiv.org/abs/2304.05919; official code Haochen-Wang409/HPM).

MAE plus a *loss predictor*: a second decoder branch that shares the reconstruction decoder's
embedding, mask token and position embedding and predicts, per patch, how hard the patch is to
reconstruct. It is trained with a relative (pairwise ranking) loss against the detached per-patch
reconstruction error. An EMA teacher of the whole model scores every patch of the unmasked image;
``mmmask.HardPatchMasking`` then masks the teacher's hardest patches (an easy-to-hard share that
grows with the epoch) plus random ones. ``L = L_rec + L_rank``.
"""
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmcv.cnn import build_norm_layer
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
from mmpretrain.models.necks import MAEPretrainDecoder
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from mmmask.models.masking import MaskPair, MaskSample
from mmmask.registry import MODELS
from .ema_teacher import EMATeacher

__all__ = ['HPM', 'HPMDecoder', 'HPMHead', 'hpm_relative_ranking_loss', 'hpm_absolute_loss',
           'pairwise_ranking_accuracy']


def patchify(imgs: Tensor, patch_size: int) -> Tensor:
    """``[B, C, H, W]`` → ``[B, h·w, p·p·C]`` (raster patch order, channel-last inside a patch,
    as MAE/HPM)."""
    B, C, H, W = imgs.shape
    p = patch_size
    if H % p or W % p:
        raise ValueError(f'image size {(H, W)} is not a multiple of the patch size {p}')
    x = imgs.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(B, (H // p) * (W // p), p * p * C)


def hpm_relative_ranking_loss(scores: Tensor, target: Tensor) -> Tensor:
    """HPM's relative loss-prediction objective (``forward_learning_loss(relative=True)``).

    For every ordered pair (i, j) of an image's patches, ``d = s_j - s_i`` is scored with
    ``-log(sigmoid(d) + 1e-6)`` if ``t_j > t_i`` and ``-log(1 - sigmoid(d) + 1e-6)`` if
    ``t_j < t_i``; ties contribute nothing. The batch sum is divided by the number of non-tied
    ordered pairs of the whole batch. Batched ``[B, n, n]``; ``target`` must be detached.
    """
    pos = target.unsqueeze(1) > target.unsqueeze(2)  # [b, i, j]: t_j > t_i
    neg = target.unsqueeze(1) < target.unsqueeze(2)
    diff = scores.unsqueeze(1) - scores.unsqueeze(2)  # s_j - s_i
    prob = torch.sigmoid(diff)
    loss = -pos.to(diff.dtype) * torch.log(prob + 1e-6) \
        - neg.to(diff.dtype) * torch.log(1 - prob + 1e-6)
    return loss.sum() / (pos | neg).sum()


def hpm_absolute_loss(scores: Tensor, target: Tensor) -> Tensor:
    """HPM's absolute variant: MSE between the scores and the per-image standardised targets
    (unbiased variance, ``+1e-6`` inside the square root)."""
    mean = target.mean(dim=1, keepdim=True)
    var = target.var(dim=1, keepdim=True)
    return ((scores - (target - mean) / (var + 1e-6)**.5)**2).mean()


@torch.no_grad()
def pairwise_ranking_accuracy(scores: Tensor, target: Tensor) -> Tensor:
    """Fraction of non-tied ordered pairs whose score order agrees with the target order."""
    dt = target.unsqueeze(1) - target.unsqueeze(2)
    ds = scores.unsqueeze(1) - scores.unsqueeze(2)
    valid = dt != 0
    agree = (torch.sign(ds) == torch.sign(dt)) & valid
    return agree.sum().float() / valid.sum().clamp(min=1).float()


@MODELS.register_module()
class HPMDecoder(MAEPretrainDecoder):
    """MAE decoder plus HPM's loss predictor.

    The reconstruction branch is mmpretrain's :class:`MAEPretrainDecoder` (same keys); the loss
    predictor (``loss_blocks``, ``loss_norm``, ``loss_pred``) has its own blocks, norm and a
    ``Linear(decoder_embed_dim → p²·C)`` whose outputs are averaged into one score per token
    (as the official ``decoder_pred_losspred``). Both read the same embedded sequence
    ``[cls, visible..., masked...]`` in the order given by ``ids_order`` — not restored to raster
    order, as in the official code.

    Args:
        loss_depth: blocks of the loss predictor (official: ``decoder_depth``).
        **kwargs: :class:`MAEPretrainDecoder` arguments.
    """

    def __init__(self, loss_depth: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        dim = self.decoder_embed.out_features
        depth = len(self.decoder_blocks) if loss_depth is None else loss_depth
        num_heads = self.decoder_blocks[0].attn.num_heads
        ffn = self.decoder_blocks[0].ffn.layers[0][0].out_features
        norm_cfg = kwargs.get('norm_cfg', dict(type='LN', eps=1e-6))
        self.loss_blocks = nn.ModuleList([
            TransformerEncoderLayer(dim, num_heads, ffn, qkv_bias=True, norm_cfg=norm_cfg)
            for _ in range(depth)
        ])
        self.loss_norm = build_norm_layer(norm_cfg, dim)[1]
        self.loss_pred = nn.Linear(dim, self.decoder_pred.out_features, bias=True)

    def embed_tokens(self, x: Tensor, ids_order: Tensor) -> Tensor:
        """``[cls, visible]`` encoder tokens → the decoder input ``[cls, visible, masked]``.

        ``ids_order`` ``[B, L]``: the visible patch ids (in the encoder's order) followed by the
        masked ones; visible/mask tokens get the decoder position embedding of their patch.
        """
        x = self.decoder_embed(x)
        B, K, D = x.shape[0], x.shape[1] - 1, x.shape[2]
        if ids_order.shape[0] != B or ids_order.shape[1] < K:
            raise ValueError(f'ids_order {tuple(ids_order.shape)} does not fit {K} visible tokens '
                             f'of a batch of {B}')
        pos = torch.gather(self.decoder_pos_embed[:, 1:].expand(B, -1, -1), 1,
                           ids_order.unsqueeze(-1).expand(-1, -1, D))
        parts = [x[:, :1] + self.decoder_pos_embed[:, :1], x[:, 1:] + pos[:, :K]]
        if ids_order.shape[1] > K:
            parts.append(self.mask_token + pos[:, K:])
        return torch.cat(parts, dim=1)

    def forward(self, x: Tensor, ids_order: Tensor, reconstruct: bool = True,
                score: bool = True) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        """Returns ``(pred [B, L, p²·C], scores [B, L])`` in ``ids_order`` order (cls removed);
        a branch that is switched off returns None (the teacher only scores)."""
        seq = self.embed_tokens(x, ids_order)
        pred = scores = None
        if reconstruct:
            h = seq
            for blk in self.decoder_blocks:
                h = blk(h)
            pred = self.decoder_pred(self.decoder_norm(h))[:, 1:]
        if score:
            h = seq
            for blk in self.loss_blocks:
                h = blk(h)
            scores = self.loss_pred(self.loss_norm(h))[:, 1:].mean(dim=-1)
        return pred, scores


@MODELS.register_module()
class HPMHead(nn.Module):
    """Per-patch reconstruction MSE + loss-prediction objective of HPM.

    Args:
        patch_size: the encoder's patch size.
        norm_pix: per-patch normalised targets (unbiased var, +1e-6; the official scripts leave
            ``--norm_pix_loss`` off).
        relative: the pairwise ranking loss (``--relative``, the paper's recipe); False: the
            absolute (standardised-MSE) variant.
        rank_weight: weight of the loss-prediction term (official: 1).
    """

    def __init__(self, patch_size: int = 16, norm_pix: bool = False, relative: bool = True,
                 rank_weight: float = 1.0):
        super().__init__()
        self.patch_size, self.norm_pix = patch_size, norm_pix
        self.relative, self.rank_weight = relative, rank_weight

    def target(self, imgs: Tensor, ids: Tensor) -> Tensor:
        """Patch vectors of ``imgs`` at the patch ids ``ids`` ``[B, M]``, ``[B, M, p²·C]``."""
        t = patchify(imgs, self.patch_size)
        t = torch.gather(t, 1, ids.unsqueeze(-1).expand(-1, -1, t.shape[-1]))
        if self.norm_pix:
            mean = t.mean(dim=-1, keepdim=True)
            var = t.var(dim=-1, keepdim=True)
            t = (t - mean) / (var + 1e-6)**.5
        return t

    def loss(self, pred: Tensor, scores: Tensor, imgs: Tensor, ids_masked: Tensor
             ) -> Dict[str, Tensor]:
        """``pred`` ``[B, M, p²·C]`` and ``scores`` ``[B, M]`` of the masked tokens, in the order
        of ``ids_masked`` ``[B, M]``. Returns ``loss_rec``, ``loss_rank`` and the (non-loss)
        pairwise ``rank_acc`` of the scores against the true per-patch errors."""
        if pred.shape[:2] != ids_masked.shape or scores.shape != ids_masked.shape:
            raise ValueError(f'pred {tuple(pred.shape)} / scores {tuple(scores.shape)} do not '
                             f'match the masked ids {tuple(ids_masked.shape)}')
        matrix = ((pred - self.target(imgs, ids_masked))**2).mean(dim=-1)  # [B, M]
        target = matrix.detach()
        scores = scores.float()  # pairwise sigmoids/logs in fp32 under AMP
        if self.relative:
            rank = hpm_relative_ranking_loss(scores, target)
        else:
            rank = hpm_absolute_loss(scores, target)
        return dict(loss_rec=matrix.mean(), loss_rank=self.rank_weight * rank,
                    rank_acc=pairwise_ranking_accuracy(scores.detach(), target))


@MODELS.register_module()
class HPM(BaseSelfSupervisor):
    """Hard Patches Mining (Wang et al., CVPR 2023).

    Args:
        backbone: a ``mmmask.MaskedViT`` (fixed sin-cos position embedding).
        neck: ``mmmask.HPMDecoder``.
        head: ``mmmask.HPMHead``.
        mask_generator: ``mmmask.HardPatchMasking`` (the paper) or any generator returning a fixed
            number of visible tokens (``mmmask.RandomMasking``: MAE + loss predictor, no teacher
            pass).
        teacher: ``EMATeacher`` arguments (``decay``, ``schedule``, ``end_decay``) of the EMA
            teacher that scores the unmasked image; None: no teacher (the student scores, if the
            generator needs scores).
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 mask_generator: dict = dict(type='mmmask.HardPatchMasking', ratio=0.75),
                 teacher: Optional[dict] = dict(decay=0.999, schedule='hpm', end_decay=0.9999),
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None, **kwargs):
        if data_preprocessor is None:
            data_preprocessor = dict(type='mmpretrain.SelfSupDataPreprocessor')
        super().__init__(backbone=backbone, neck=neck, head=head,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg, **kwargs)
        if not hasattr(self.backbone, 'forward_masked'):
            raise ValueError('HPM needs an external-mask encoder: backbone=dict(type='
                             "'mmmask.MaskedViT', ...)")
        self.mask_generator = MODELS.build(mask_generator)
        self.teacher = None
        if teacher is not None:
            self.teacher = EMATeacher(nn.ModuleList([self.backbone, self.neck]), **teacher)

    def init_weights(self) -> None:
        super().init_weights()
        if self.teacher is not None:
            self.teacher.reset(nn.ModuleList([self.backbone, self.neck]))

    @property
    def needs_scores(self) -> bool:
        return 'scores' in getattr(self.mask_generator, 'required_signals', ())

    @torch.no_grad()
    def patch_scores(self, imgs: Tensor, use_teacher: bool = True) -> Tensor:
        """Predicted per-patch loss of every patch of the unmasked ``imgs``, ``[B, L]`` raster."""
        if use_teacher and self.teacher is not None:
            backbone, neck = self.teacher.module[0], self.teacher.module[1]
        else:
            backbone, neck = self.backbone, self.neck
        tokens = backbone.forward_masked(imgs).tokens
        L = tokens.shape[1] - 1
        order = torch.arange(L, device=imgs.device).expand(imgs.shape[0], -1)
        return neck(tokens, order, reconstruct=False)[1]

    def draw_mask(self, imgs: Tensor) -> MaskSample:
        grid = self.backbone.patch_resolution
        scores = None
        if self.needs_scores:
            if self.teacher is not None and self.training:
                # mmpretrain BYOL convention: update before the teacher pass (≡ timm ModelEma
                # updated after each optimizer step)
                self.teacher.update(nn.ModuleList([self.backbone, self.neck]))
            scores = self.patch_scores(imgs)
        sample = self.mask_generator(imgs.shape[0], tuple(grid), imgs.device, scores=scores)
        if isinstance(sample, MaskPair) or sample.ids_keep is None:
            raise ValueError('HPM drops masked tokens and needs one mask with a fixed number of '
                             'visible tokens per image: use mmmask.HardPatchMasking or '
                             'mmmask.RandomMasking as mask_generator')
        return sample

    def forward_student(self, imgs: Tensor, ids_order: Tensor, num_keep: int
                        ) -> Tuple[Tensor, Tensor, Tensor]:
        """Encoder on the ``ids_order[:, :num_keep]`` tokens and both decoder branches.
        Returns ``(latent [B, 1+K, D], pred [B, L, P], scores [B, L])`` in ``ids_order`` order."""
        latent = self.backbone.forward_masked(imgs, ids_keep=ids_order[:, :num_keep]).tokens
        pred, scores = self.neck(latent, ids_order)
        return latent, pred, scores

    def loss(self, inputs: Union[Tensor, List[Tensor]], data_samples: List[DataSample],
             **kwargs) -> Dict[str, Tensor]:
        imgs = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        sample = self.draw_mask(imgs)
        K = sample.num_keep
        ids_order = torch.argsort(sample.ids_restore, dim=1)
        _, pred, scores = self.forward_student(imgs, ids_order, K)
        return self.head.loss(pred[:, K:], scores[:, K:], imgs, ids_order[:, K:])

    def extract_feat(self, inputs: Tensor, data_samples=None, **kwargs):
        return self.backbone(inputs)
