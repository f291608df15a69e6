"""kMaX-DeepLab transformer decoder (Yu et al., "k-means Mask Transformer", ECCV 2022).

The object queries are cluster centres. Every decoder layer runs one k-means step against a
pixel-decoder feature map: each pixel is hard-assigned to the centre whose (layer-predicted) mask
logit is largest, the centres are updated by the sum of their pixels' values, and the centres then
exchange information by self-attention and pass through an FFN. A final predictor reads the
class logits and mask logits off the centres and the stride-4 feature.

Numerics follow the reference implementations (bytedance ``kmax-deeplab`` and google-research
``deeplab2``): only convolutions + batch norm (eps 1e-3, momentum 0.01 by default) + exact
GELU, no LayerNorm, no softmax in the cross-attention, an fp32 softmax in the self-attention,
and the last batch norm of every residual branch initialised with gamma 0.

Also provides :class:`KMaXAuxSemanticHead`, the auxiliary semantic predictor (ASPP on res5 plus a
Panoptic-DeepLab style two-step low-level fusion) used for the auxiliary semantic loss.
"""
import math
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from torch import Tensor

from mmmask.registry import MODELS

# kMaX's TF conventions (BN eps 1e-3 / momentum 0.99, truncated-normal inits) live with the
# pixel decoder and are shared here.
from .kmax_pixel_decoder import (_DEFAULT_NORM, _he_normal_, _norm, _norm_1d,
                                 _trunc_normal_)


class _NormNd(nn.Module):
    """A 2-d norm layer (BN, SyncBN, GN, ...) applied to a (B, C, L) tensor via a (B, C, L, 1) view.

    For batch norm this equals a 1-d batch norm over batch and length, so any ``norm_cfg`` written
    for 2-d maps can also normalise token sequences.
    """

    def __init__(self, norm_cfg: dict, channels: int) -> None:
        super().__init__()
        self.norm = _norm(norm_cfg, channels)

    def forward(self, x: Tensor) -> Tensor:
        return _norm_1d(self.norm, x) if x.dim() == 3 else self.norm(x)


class ConvNormAct(nn.Module):
    """conv (1-d or 2-d) -> optional norm -> optional exact GELU, with the kMaX initialisations.

    Args:
        conv_init: ``'he_normal'`` (TF-style truncated normal, std ``sqrt(2 / fan_in)``),
            ``'xavier_uniform'`` or a float (truncated normal with that std).
        norm_init: initial gamma of the norm (0.0 for the last norm of a residual branch).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, *,
                 dims: int = 2, groups: int = 1, dilation: int = 1, bias: bool = False,
                 norm_cfg: Optional[dict] = None, act: bool = False,
                 conv_init: Union[str, float] = 'he_normal', norm_init: float = 1.0) -> None:
        super().__init__()
        conv_cls = {1: nn.Conv1d, 2: nn.Conv2d}[dims]
        padding = dilation * (kernel_size - 1) // 2
        self.conv = conv_cls(in_channels, out_channels, kernel_size, padding=padding,
                             dilation=dilation, groups=groups, bias=bias)
        self.norm = _NormNd(norm_cfg, out_channels) if norm_cfg is not None else None
        self.act = nn.GELU() if act else None

        if conv_init == 'he_normal':
            _he_normal_(self.conv.weight)
        elif conv_init == 'xavier_uniform':
            nn.init.xavier_uniform_(self.conv.weight)
        elif isinstance(conv_init, (int, float)):
            _trunc_normal_(self.conv.weight, float(conv_init))
        else:
            raise ValueError(f'unknown conv_init {conv_init!r}')
        if bias:
            nn.init.zeros_(self.conv.bias)
        if self.norm is not None and getattr(self.norm.norm, 'weight', None) is not None:
            nn.init.constant_(self.norm.norm.weight, norm_init)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.act is not None:
            x = self.act(x)
        return x


def _check_channels(name: str, x: Tensor, dim: int, channels: int) -> None:
    if x.dim() != dim:
        raise ValueError(f'{name} must be a {dim}-d tensor, got shape {tuple(x.shape)}')
    if x.shape[1] != channels:
        raise ValueError(f'{name} must have {channels} channels, got shape {tuple(x.shape)}')


@MODELS.register_module()
class KMaXPredictor(BaseModule):
    """kMaX-DeepLab prediction head (Yu et al., ECCV 2022): class and mask logits of K clusters.

    Pixel branch: depthwise 5x5 + norm + GELU, 1x1 -> ``channels`` + norm + GELU,
    1x1 (bias) -> ``mask_channels`` + norm, then L2 normalisation over channels. Mask logits are
    the dot products of the unit pixel embeddings with a per-cluster kernel (1x1 conv + norm of
    ``mask_embed``), passed through a single-channel norm whose gamma starts at 0.1.
    Class logits are a plain linear read-out of ``class_embed``; when ``void_prior`` is given,
    ``log((num_outputs - 1) * p / (1 - p))`` is added to the last (void) logit.

    Args:
        in_channels: channels of the pixel feature.
        channels: channels of the cluster embeddings (and of the pixel branch's hidden layer).
        mask_channels: dimension of the pixel / mask embedding space.
        num_outputs: class logits per cluster (classes + void for kMaX).
        void_prior: prior probability of the void class, or ``None`` for no bias.
        norm_cfg: norm config (BN with eps 1e-3, momentum 0.01 in the reference).
    """

    def __init__(self, in_channels: int, channels: int = 256, mask_channels: int = 128,
                 num_outputs: int = 134, void_prior: Optional[float] = 0.9,
                 norm_cfg: dict = _DEFAULT_NORM, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_outputs < 1:
            raise ValueError(f'num_outputs must be >= 1, got {num_outputs}')
        if void_prior is not None:
            if not 0.0 < void_prior < 1.0:
                raise ValueError(f'void_prior must lie in (0, 1) or be None, got {void_prior}')
            if num_outputs < 2:
                raise ValueError('void_prior needs num_outputs >= 2 (classes + void); use '
                                 'void_prior=None for a plain linear read-out')
        self.in_channels = in_channels
        self.channels = channels
        self.mask_channels = mask_channels
        self.num_outputs = num_outputs
        self.void_prior = void_prior

        self.pixel_dw = ConvNormAct(in_channels, in_channels, 5, groups=in_channels,
                                    norm_cfg=norm_cfg, act=True, conv_init='xavier_uniform')
        self.pixel_pw = ConvNormAct(in_channels, channels, 1, norm_cfg=norm_cfg, act=True)
        self.pixel_out = ConvNormAct(channels, mask_channels, 1, bias=True, norm_cfg=norm_cfg,
                                     conv_init=0.01)
        self.mask_head = ConvNormAct(channels, mask_channels, 1, dims=1, norm_cfg=norm_cfg)
        self.class_head = ConvNormAct(channels, num_outputs, 1, dims=1, bias=True, conv_init=0.01)
        self.mask_norm = _NormNd(norm_cfg, 1)
        if getattr(self.mask_norm.norm, 'weight', None) is not None:
            nn.init.constant_(self.mask_norm.norm.weight, 0.1)

        void_bias = torch.zeros(num_outputs)
        if void_prior is not None:
            void_bias[-1] = math.log((num_outputs - 1) * void_prior / (1.0 - void_prior))
        self.register_buffer('void_bias', void_bias, persistent=False)

    def forward(self, mask_embed: Tensor, class_embed: Tensor, pixel: Tensor
                ) -> Dict[str, Tensor]:
        """mask_embed, class_embed: (B, channels, K); pixel: (B, in_channels, H, W).

        Returns dict(pred_logits=(B, K, num_outputs), pred_masks=(B, K, H, W),
        pixel_feature=(B, mask_channels, H, W) with unit L2 norm over channels).
        """
        _check_channels('mask_embed', mask_embed, 3, self.channels)
        _check_channels('class_embed', class_embed, 3, self.channels)
        _check_channels('pixel', pixel, 4, self.in_channels)
        if mask_embed.shape != class_embed.shape or mask_embed.shape[0] != pixel.shape[0]:
            raise ValueError(f'batch / cluster sizes disagree: mask_embed {tuple(mask_embed.shape)}'
                             f', class_embed {tuple(class_embed.shape)}, pixel '
                             f'{tuple(pixel.shape)}')
        feat = self.pixel_out(self.pixel_pw(self.pixel_dw(pixel)))
        feat = F.normalize(feat, p=2, dim=1)

        logits = self.class_head(class_embed).transpose(1, 2)
        if self.void_prior is not None:
            logits = logits + self.void_bias.to(logits.dtype)
        kernel = self.mask_head(mask_embed)
        masks = torch.einsum('bchw,bck->bkhw', feat, kernel)
        b, k, h, w = masks.shape
        # one norm channel shared by all clusters and pixels
        masks = self.mask_norm(masks.reshape(b, 1, k, h * w)).reshape(b, k, h, w)
        return dict(pred_logits=logits, pred_masks=masks, pixel_feature=feat)


class KMaXTransformerLayer(nn.Module):
    """One kMaX decoder layer (Yu et al., ECCV 2022, Sec. 3.2): k-means cross-attention,
    self-attention over the centres and an FFN, all with conv + norm + GELU.

    Args:
        in_channels: channels of the pixel feature this layer clusters.
        channels: channels of the cluster centres; also the pixel bottleneck and value width.
        key_channels: total query/key width of the self-attention.
        ffn_channels: hidden width of the FFN.
        num_heads: self-attention heads.
        num_outputs, void_prior, mask_channels: of the layer's own :class:`KMaXPredictor`.
        drop_path_rate: drop-path probability of all three residual branches.
    """

    def __init__(self, in_channels: int, channels: int = 256, key_channels: int = 128,
                 ffn_channels: int = 2048, num_heads: int = 8, num_outputs: int = 134,
                 void_prior: Optional[float] = 0.9, mask_channels: int = 128,
                 drop_path_rate: float = 0.0, norm_cfg: dict = _DEFAULT_NORM) -> None:
        super().__init__()
        if key_channels % num_heads or channels % num_heads:
            raise ValueError(f'key_channels={key_channels} and channels={channels} must be '
                             f'divisible by num_heads={num_heads}')
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f'drop_path_rate must lie in [0, 1), got {drop_path_rate}')
        self.in_channels = in_channels
        self.channels = channels
        self.key_channels = key_channels
        self.value_channels = channels
        self.num_heads = num_heads
        std = channels ** -0.5

        self.pixel_proj = ConvNormAct(in_channels, channels, 1, norm_cfg=norm_cfg, act=True)
        self.query_proj = ConvNormAct(channels, channels, 1, dims=1, norm_cfg=norm_cfg, act=True)
        self.pixel_value = ConvNormAct(channels, self.value_channels, 1, norm_cfg=norm_cfg,
                                       conv_init=std)
        self.predictor = KMaXPredictor(channels, channels, mask_channels, num_outputs,
                                       void_prior, norm_cfg)
        # k-means update branch
        self.kmeans_norm = _NormNd(norm_cfg, self.value_channels)
        self.kmeans_out = ConvNormAct(self.value_channels, channels, 1, dims=1, norm_cfg=norm_cfg,
                                      norm_init=0.0)
        # self-attention branch
        self.qkv = ConvNormAct(channels, 2 * key_channels + self.value_channels, 1, dims=1,
                               norm_cfg=norm_cfg, conv_init=std)
        self.sim_norm = _NormNd(norm_cfg, num_heads)
        self.attn_value_norm = _NormNd(norm_cfg, self.value_channels)
        self.attn_out = ConvNormAct(self.value_channels, channels, 1, dims=1, norm_cfg=norm_cfg,
                                    norm_init=0.0)
        # FFN
        self.ffn_in = ConvNormAct(channels, ffn_channels, 1, dims=1, norm_cfg=norm_cfg, act=True)
        self.ffn_out = ConvNormAct(ffn_channels, channels, 1, dims=1, norm_cfg=norm_cfg,
                                   norm_init=0.0)
        self.drop_path_kmeans = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self.drop_path_attn = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self.drop_path_ffn = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    @staticmethod
    def kmeans_assignment(mask_logits: Tensor) -> Tensor:
        """Hard assignment (B, K, H*W): one-hot of the argmax over the cluster axis (no grad)."""
        with torch.no_grad():
            logits = mask_logits.detach().flatten(2)
            index = logits.argmax(dim=1, keepdim=True)
            return torch.zeros_like(logits).scatter_(1, index, 1.0)

    @staticmethod
    def kmeans_update(assignment: Tensor, pixel_value: Tensor) -> Tensor:
        """Sum of each cluster's assigned pixel values, fp32: (B, K, N), (B, C, N) -> (B, C, K)."""
        with torch.autocast(device_type=pixel_value.device.type, enabled=False):
            return torch.einsum('bkn,bcn->bck', assignment.float(), pixel_value.float())

    def _self_attention(self, query_space: Tensor) -> Tensor:
        b, _, k = query_space.shape
        h = self.num_heads
        q, key, v = torch.split(self.qkv(query_space),
                                [self.key_channels, self.key_channels, self.value_channels], 1)
        q = q.reshape(b, h, -1, k)
        key = key.reshape(b, h, -1, k)
        v = v.reshape(b, h, -1, k)
        sim = self.sim_norm(torch.einsum('bhdl,bhdm->bhlm', q, key))  # norm over heads
        with torch.autocast(device_type=sim.device.type, enabled=False):
            weights = F.softmax(sim.float(), dim=-1)
        out = torch.einsum('bhlm,bhdm->bhdl', weights.to(v.dtype), v).reshape(b, -1, k)
        return F.gelu(self.attn_value_norm(out))

    def forward(self, pixel: Tensor, query: Tensor):
        """pixel: (B, in_channels, H, W); query: (B, channels, K) centres.

        Returns ``(new_centres (B, channels, K), prediction dict of this layer's predictor)``.
        """
        _check_channels('pixel', pixel, 4, self.in_channels)
        _check_channels('query', query, 3, self.channels)
        if pixel.shape[0] != query.shape[0]:
            raise ValueError(f'batch sizes differ: pixel {tuple(pixel.shape)}, query '
                             f'{tuple(query.shape)}')
        # the incoming pixel feature is not activated yet
        pixel_space = self.pixel_proj(F.gelu(pixel))
        query_space = self.query_proj(query)
        pixel_value = self.pixel_value(pixel_space).flatten(2)

        # k-means assignment from this layer's own prediction, then update by summation
        pred = self.predictor(query_space, query_space, pixel_space)
        assignment = self.kmeans_assignment(pred['pred_masks'])
        update = self.kmeans_update(assignment, pixel_value)
        update = self.kmeans_out(self.kmeans_norm(update))
        query = query + self.drop_path_kmeans(update)

        # self-attention, with q/k/v from the pre-update query projection
        query = query + self.drop_path_attn(self.attn_out(self._self_attention(query_space)))
        query = F.gelu(query)

        query = query + self.drop_path_ffn(self.ffn_out(self.ffn_in(query)))
        query = F.gelu(query)
        return query, pred


@MODELS.register_module()
class KMaXTransformerDecoder(BaseModule):
    """kMaX-DeepLab transformer decoder (Yu et al., ECCV 2022).

    ``sum(num_layers)`` k-means layers run over the pixel-decoder features at strides 32, 16 and 8
    (``num_layers[i]`` layers on ``multi_scale[i]``), starting from K learnable centres tiled over
    the batch. The final class / mask embeddings are projected from the last centres and read off
    the stride-4 feature by a separate predictor. The per-layer predictions are returned as
    auxiliary outputs with masks and (not re-normalised) pixel features resized to stride 4.

    ``cluster_embed`` of every output is the centre tensor that produced it: the layer's input
    centres for an auxiliary output, the final centres for the final output.

    ``align_corners`` of those resizes: a bool, or ``None`` for the reference rule (``True`` iff the
    stride-4 height is odd, as in the official ``_set_aux_loss``).
    """

    def __init__(self, in_channels: Sequence[int] = (2048, 1024, 512), os4_channels: int = 256,
                 num_layers: Sequence[int] = (2, 2, 2), num_clusters: int = 128,
                 num_outputs: int = 134, void_prior: Optional[float] = 0.9, channels: int = 256,
                 key_channels: int = 128, ffn_channels: int = 2048, num_heads: int = 8,
                 mask_channels: int = 128, drop_path_rate: float = 0.0,
                 norm_cfg: dict = _DEFAULT_NORM, align_corners: Optional[bool] = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        in_channels = list(in_channels)
        num_layers = list(num_layers)
        if len(in_channels) != len(num_layers):
            raise ValueError(f'in_channels {in_channels} and num_layers {num_layers} must have '
                             'the same length (one entry per pixel-decoder scale)')
        if any(n < 0 for n in num_layers) or sum(num_layers) == 0:
            raise ValueError(f'num_layers must be non-negative with a positive sum, got '
                             f'{num_layers}')
        if num_clusters < 1:
            raise ValueError(f'num_clusters must be >= 1, got {num_clusters}')
        self.in_channels = in_channels
        self.os4_channels = os4_channels
        self.num_layers = num_layers
        self.num_clusters = num_clusters
        self.channels = channels
        self.align_corners = align_corners

        self.layers = nn.ModuleList()
        for c, n in zip(in_channels, num_layers):
            for _ in range(n):
                self.layers.append(KMaXTransformerLayer(
                    c, channels, key_channels, ffn_channels, num_heads, num_outputs, void_prior,
                    mask_channels, drop_path_rate, norm_cfg))
        # (channels, K), tiled over the batch; give it no weight decay in the optimiser config
        self.cluster_centers = nn.Parameter(_trunc_normal_(torch.empty(channels, num_clusters),
                                                             1.0))
        self.class_embed_proj = ConvNormAct(channels, channels, 1, dims=1, norm_cfg=norm_cfg,
                                            act=True)
        self.mask_embed_proj = ConvNormAct(channels, channels, 1, dims=1, norm_cfg=norm_cfg,
                                           act=True)
        self.predictor = KMaXPredictor(os4_channels, channels, mask_channels, num_outputs,
                                       void_prior, norm_cfg)

    def forward(self, multi_scale: Sequence[Tensor], os4: Tensor) -> Dict:
        """multi_scale: [OS32, OS16, OS8] pixel-decoder features; os4: the stride-4 feature.

        Returns dict(pred_logits (B, K, O), pred_masks (B, K, H4, W4),
        pixel_feature (B, mask_channels, H4, W4), cluster_embed (B, channels, K),
        aux_outputs=[dict(pred_logits, pred_masks, pixel_feature, cluster_embed)] per layer).
        """
        if len(multi_scale) != len(self.in_channels):
            raise ValueError(f'expected {len(self.in_channels)} multi-scale features, got '
                             f'{len(multi_scale)}')
        _check_channels('os4', os4, 4, self.os4_channels)
        b = os4.shape[0]
        for i, (x, c) in enumerate(zip(multi_scale, self.in_channels)):
            _check_channels(f'multi_scale[{i}]', x, 4, c)
            if x.shape[0] != b:
                raise ValueError(f'multi_scale[{i}] has batch {x.shape[0]}, os4 has {b}')

        centres = self.cluster_centers.unsqueeze(0).expand(b, -1, -1)
        size = os4.shape[-2:]
        align = self.align_corners
        if align is None:  # reference rule: odd target height
            align = size[0] % 2 == 1
        aux: List[Dict[str, Tensor]] = []
        layer_idx = 0
        for x, n in zip(multi_scale, self.num_layers):
            for _ in range(n):
                new_centres, pred = self.layers[layer_idx](x, centres)
                aux.append(dict(
                    pred_logits=pred['pred_logits'],
                    pred_masks=F.interpolate(pred['pred_masks'], size=size, mode='bilinear',
                                             align_corners=align),
                    pixel_feature=F.interpolate(pred['pixel_feature'], size=size,
                                                mode='bilinear', align_corners=align),
                    cluster_embed=centres))
                centres = new_centres
                layer_idx += 1

        pred = self.predictor(self.mask_embed_proj(centres), self.class_embed_proj(centres), os4)
        return dict(pred_logits=pred['pred_logits'], pred_masks=pred['pred_masks'],
                    pixel_feature=pred['pixel_feature'], cluster_embed=centres,
                    aux_outputs=aux)


class KMaXASPP(nn.Module):
    """ASPP of the kMaX auxiliary semantic head: 1x1, three atrous 3x3 and image pooling branches
    (each conv + norm + GELU), a 1x1 projection + norm + GELU, then dropout."""

    def __init__(self, in_channels: int, channels: int = 256,
                 dilations: Sequence[int] = (6, 12, 18), dropout: float = 0.1,
                 norm_cfg: dict = _DEFAULT_NORM) -> None:
        super().__init__()
        branches = [ConvNormAct(in_channels, channels, 1, norm_cfg=norm_cfg, act=True)]
        for d in dilations:
            branches.append(ConvNormAct(in_channels, channels, 3, dilation=d, norm_cfg=norm_cfg,
                                        act=True))
        self.branches = nn.ModuleList(branches)
        self.pool_branch = ConvNormAct(in_channels, channels, 1, norm_cfg=norm_cfg, act=True)
        self.project = ConvNormAct(channels * (len(dilations) + 2), channels, 1,
                                   norm_cfg=norm_cfg, act=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        outs = [branch(x) for branch in self.branches]
        pooled = self.pool_branch(F.adaptive_avg_pool2d(x, 1))
        # bilinear resizing of a 1x1 map is a broadcast
        outs.append(pooled.expand(-1, -1, x.shape[2], x.shape[3]))
        return self.dropout(self.project(torch.cat(outs, dim=1)))


@MODELS.register_module()
class KMaXAuxSemanticHead(BaseModule):
    """Auxiliary semantic predictor of kMaX-DeepLab (Yu et al., ECCV 2022), a Panoptic-DeepLab
    single decoder + head: ASPP on res5, fused with res3 and then res2 (each projected to a few
    channels, concatenated, depthwise 5x5 + 1x1), then depthwise 5x5 -> 1x1 -> 1x1 classifier.

    Args:
        in_channels: channels of (res5, res3, res2).
        num_outputs: output channels (classes + void in kMaX).
        low_level_channels: projection widths of (res3, res2).
        align_corners: of the two bilinear upsamplings; ``None`` = reference rule (``True`` iff
            res5's width is odd, used for both).

    Returns logits at res2's spatial size. Note that the image-pooling branch's norm sees one value
    per channel and image, so batch norm needs a batch of at least 2 in training (as in the
    reference).
    """

    def __init__(self, in_channels: Sequence[int], num_outputs: int, channels: int = 256,
                 aspp_dilations: Sequence[int] = (6, 12, 18),
                 low_level_channels: Sequence[int] = (64, 32), dropout: float = 0.1,
                 norm_cfg: dict = _DEFAULT_NORM, align_corners: Optional[bool] = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        in_channels = list(in_channels)
        low_level_channels = list(low_level_channels)
        if len(in_channels) != len(low_level_channels) + 1:
            raise ValueError(f'in_channels {in_channels} must hold res5 plus one entry per '
                             f'low-level feature ({len(low_level_channels)})')
        if num_outputs < 1:
            raise ValueError(f'num_outputs must be >= 1, got {num_outputs}')
        self.in_channels = in_channels
        self.align_corners = align_corners
        self.aspp = KMaXASPP(in_channels[0], channels, aspp_dilations, dropout, norm_cfg)
        self.low_projs = nn.ModuleList()
        self.fuses = nn.ModuleList()
        for c_in, c_low in zip(in_channels[1:], low_level_channels):
            self.low_projs.append(ConvNormAct(c_in, c_low, 1, norm_cfg=norm_cfg, act=True))
            c = channels + c_low
            self.fuses.append(nn.Sequential(
                ConvNormAct(c, c, 5, groups=c, norm_cfg=norm_cfg, act=True,
                            conv_init='xavier_uniform'),
                ConvNormAct(c, channels, 1, norm_cfg=norm_cfg, act=True)))
        self.head = nn.Sequential(
            ConvNormAct(channels, channels, 5, groups=channels, norm_cfg=norm_cfg, act=True,
                        conv_init='xavier_uniform'),
            ConvNormAct(channels, channels, 1, norm_cfg=norm_cfg, act=True),
            ConvNormAct(channels, num_outputs, 1, bias=True, conv_init=0.01))

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """feats = [res5, res3, res2] -> (B, num_outputs, H2, W2) logits at res2's size."""
        if len(feats) != len(self.in_channels):
            raise ValueError(f'expected {len(self.in_channels)} features, got {len(feats)}')
        for i, (x, c) in enumerate(zip(feats, self.in_channels)):
            _check_channels(f'feats[{i}]', x, 4, c)
        align = self.align_corners
        if align is None:  # reference rule: odd res5 width, for both upsamplings
            align = feats[0].shape[-1] % 2 == 1
        x = self.aspp(feats[0])
        for low, proj, fuse in zip(feats[1:], self.low_projs, self.fuses):
            low = proj(low)
            x = F.interpolate(x, size=low.shape[-2:], mode='bilinear', align_corners=align)
            x = fuse(torch.cat([x, low], dim=1))
        return self.head(x)
