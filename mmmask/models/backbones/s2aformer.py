"""S2AFormer: Strip Self-Attention for efficient vision transformers.

Xu, Huang, Jia, Li, Gao, Qi — IEEE TIP 2025, arXiv:2505.22195. No official code is public; this is
a re-implementation from the paper's description as far as it could be read. What the paper
states and we follow:

* a 4-stage hierarchy with feature strides 4/8/16/32; a stem of three 3×3 convolutions (the
  first with stride 2); every stage = a patch embedding + ``L_i`` Hybrid Perception Blocks;
* a Hybrid Perception Block (HPB) on ``x ∈ R^{H×W×C}``::

      x = DWConv(x) + x
      x = SSA(LN(x)) + x
      x = LIM(LN(x)) + x
      x = MLP(LN(x)) + x

* Strip Self-Attention (SSA) reduces the *spatial* size of K and V (convolution-based spatial
  reduction, ``N → N/r²``) and compresses the *channel* size of Q and K to ``d_qk ≪ C`` (the
  "strips"), while V keeps all C channels: the affinity costs ``N · N/r² · d_qk`` instead of
  ``N² · C``.

What we had to assume (the paper's text beyond the abstract/overview was not retrievable here;
every item is listed in ``configs/s2aformer/README.md``): the depth-wise ``r×r``/stride-``r``
reduction conv followed by LayerNorm, ``d_qk`` (default ``C/4``), the LIM layout
(``1×1 → GELU → DW3×3 → 1×1``), the patch embeddings (``3×3`` stride-2 conv + LayerNorm), the
stage widths/depths/heads/reduction ratios of the presets, and the init.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor, nn

from ...registry import MODELS
from .base import normalize_out_indices, resolve_arch

__all__ = ['StripSelfAttention', 'LocalInteractionModule', 'HybridPerceptionBlock', 'S2AFormer',
           'ssa_flops']


class DWConv2d(nn.Module):
    """Depth-wise ``k×k`` convolution on a channels-last ``(B, H, W, C)`` tensor."""

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size, 1, kernel_size // 2,
                              groups=channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class StripSelfAttention(nn.Module):
    """Strip Self-Attention (SSA) on a channels-last map ``(B, H, W, C)``.

    ``Q = x W_q`` (``C → d_qk``) at full resolution; ``x_r = LN(DWConv_{r×r, stride r}(x))``
    (``N → N_r = ⌈H/r⌉·⌈W/r⌉``; the map is zero-padded to a multiple of ``r`` first);
    ``K = x_r W_k`` (``C → d_qk``), ``V = x_r W_v`` (``C → C``). Per head ``h``:
    ``A_h = softmax(Q_h K_hᵀ / √(d_qk/heads)) ∈ R^{N×N_r}``; output ``proj(concat_h A_h V_h)``.

    With ``sr_ratio=1`` there is no reduction (no conv, no norm); with ``qk_dims=C`` it is a
    PVT-style spatial-reduction attention (the ablation baseline without the channel strips).

    Args:
        embed_dims: channels C.
        num_heads: heads (``qk_dims`` and ``embed_dims`` must both be divisible by it).
        qk_dims: total channels ``d_qk`` of the compressed Q and K.
        sr_ratio: spatial reduction ``r`` of K and V.
        qkv_bias: biases in the q/k/v projections.
        attn_drop, proj_drop: dropout rates.
    """

    def __init__(self, embed_dims: int, num_heads: int, qk_dims: int, sr_ratio: int = 1,
                 qkv_bias: bool = True, attn_drop: float = 0., proj_drop: float = 0.) -> None:
        super().__init__()
        if embed_dims % num_heads or qk_dims % num_heads:
            raise ValueError(f'SSA: embed_dims ({embed_dims}) and qk_dims ({qk_dims}) must be '
                             f'divisible by num_heads ({num_heads})')
        if sr_ratio < 1:
            raise ValueError(f'SSA: sr_ratio must be >= 1, got {sr_ratio}')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.qk_dims = qk_dims
        self.sr_ratio = sr_ratio
        self.scale = (qk_dims // num_heads)**-0.5
        self.q = nn.Linear(embed_dims, qk_dims, bias=qkv_bias)
        self.k = nn.Linear(embed_dims, qk_dims, bias=qkv_bias)
        self.v = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(embed_dims, embed_dims, sr_ratio, sr_ratio, groups=embed_dims)
            self.sr_norm = nn.LayerNorm(embed_dims)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj_drop = nn.Dropout(proj_drop)

    def reduce(self, x: Tensor) -> Tensor:
        """``(B, H, W, C)`` → ``(B, N_r, C)``: the tokens K and V are computed from."""
        if self.sr_ratio == 1:
            return x.flatten(1, 2)
        r = self.sr_ratio
        h, w = x.shape[1:3]
        y = x.permute(0, 3, 1, 2)
        y = F.pad(y, (0, (-w) % r, 0, (-h) % r))
        y = self.sr(y).flatten(2).transpose(1, 2)
        return self.sr_norm(y)

    def _split(self, t: Tensor) -> Tensor:
        b, n, c = t.shape
        return t.view(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def qkv(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """``Q (B, h, N, d_qk/h)``, ``K (B, h, N_r, d_qk/h)``, ``V (B, h, N_r, C/h)``."""
        xr = self.reduce(x)
        q = self._split(self.q(x.flatten(1, 2)))
        return q, self._split(self.k(xr)), self._split(self.v(xr))

    def affinity(self, x: Tensor) -> Tensor:
        """The softmaxed strip affinity ``(B, heads, N, N_r)`` (for analysis and tests)."""
        q, k, _ = self.qkv(x)
        return ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        q, k, v = self.qkv(x)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        out = (self.attn_drop(attn) @ v).transpose(1, 2).reshape(b, h, w, c)
        return self.proj_drop(self.proj(out))


class LocalInteractionModule(nn.Module):
    """LIM (assumed layout): ``1×1 → GELU → depth-wise 3×3 → 1×1`` on a channels-last map."""

    def __init__(self, embed_dims: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.pw1 = nn.Linear(embed_dims, embed_dims)
        self.act = nn.GELU()
        self.dw = DWConv2d(embed_dims, kernel_size)
        self.pw2 = nn.Linear(embed_dims, embed_dims)

    def forward(self, x: Tensor) -> Tensor:
        return self.pw2(self.dw(self.act(self.pw1(x))))


class Mlp(nn.Sequential):
    """fc1 → GELU → dropout → fc2 → dropout."""

    def __init__(self, embed_dims: int, hidden_dims: int, drop: float = 0.) -> None:
        super().__init__(nn.Linear(embed_dims, hidden_dims), nn.GELU(), nn.Dropout(drop),
                         nn.Linear(hidden_dims, embed_dims), nn.Dropout(drop))


class HybridPerceptionBlock(nn.Module):
    """HPB: ``x += DWConv(x)``; ``x += SSA(LN x)``; ``x += LIM(LN x)``; ``x += MLP(LN x)``."""

    def __init__(self, embed_dims: int, num_heads: int, qk_dims: int, sr_ratio: int,
                 mlp_ratio: float = 4., qkv_bias: bool = True, drop_rate: float = 0.,
                 attn_drop_rate: float = 0., drop_path: float = 0.) -> None:
        super().__init__()
        self.cpe = DWConv2d(embed_dims, 3)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = StripSelfAttention(embed_dims, num_heads, qk_dims, sr_ratio, qkv_bias,
                                       attn_drop_rate, drop_rate)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.lim = LocalInteractionModule(embed_dims)
        self.norm3 = nn.LayerNorm(embed_dims)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio), drop_rate)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.cpe(x)
        x = x + self.drop_path(self.attn(self.norm1(x)))
        x = x + self.drop_path(self.lim(self.norm2(x)))
        return x + self.drop_path(self.mlp(self.norm3(x)))


class PatchEmbed(nn.Module):
    """``3×3`` stride-2 convolution + LayerNorm; NCHW in, channels-last out."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, out_channels, 3, 2, 1)
        self.norm = nn.LayerNorm(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


@MODELS.register_module()
class S2AFormer(BaseModule):
    """S2AFormer backbone (Xu et al., IEEE TIP 2025) for classification, segmentation, detection.

    Args:
        arch: ``'tiny'``, ``'small'``, ``'base'`` (**assumed** presets, see the README) or a dict
            with per-stage lists ``embed_dims``, ``depths``, ``num_heads``, ``qk_dims``,
            ``sr_ratios``, ``mlp_ratios`` and optionally ``drop_path_rate``.
        in_channels: image channels.
        out_indices: stages whose outputs are returned (NCHW, strides 4/8/16/32).
        out_norm: LayerNorm each returned output (for dense prediction and for the classifier's
            final features).
        drop_rate, attn_drop_rate: dropout rates.
        drop_path_rate: stochastic depth (linear over blocks); None takes the arch's.
        qkv_bias: biases in the q/k/v projections.
        frozen_stages: freeze the stem and the first ``frozen_stages`` stages (-1: none).
        norm_eval: keep the stem's BatchNorm layers in eval mode while training.
        with_cp: gradient checkpointing of the blocks.
        init_cfg: e.g. ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
    """
    arch_zoo: Dict[str, dict] = {
        # ASSUMED presets (the paper's variant table could not be read): PVT-like widths and
        # reduction ratios, d_qk = C/4.
        'tiny': dict(embed_dims=[48, 96, 192, 384], depths=[2, 2, 6, 2], num_heads=[1, 2, 4, 8],
                     qk_dims=[12, 24, 48, 96], sr_ratios=[8, 4, 2, 1], mlp_ratios=[4, 4, 4, 4],
                     drop_path_rate=0.1),
        'small': dict(embed_dims=[64, 128, 256, 512], depths=[2, 3, 9, 3],
                      num_heads=[1, 2, 4, 8], qk_dims=[16, 32, 64, 128], sr_ratios=[8, 4, 2, 1],
                      mlp_ratios=[4, 4, 4, 4], drop_path_rate=0.15),
        'base': dict(embed_dims=[64, 128, 320, 512], depths=[3, 4, 18, 3],
                     num_heads=[1, 2, 5, 8], qk_dims=[16, 32, 80, 128], sr_ratios=[8, 4, 2, 1],
                     mlp_ratios=[4, 4, 4, 4], drop_path_rate=0.3),
    }
    arch_keys = ('embed_dims', 'depths', 'num_heads', 'qk_dims', 'sr_ratios', 'mlp_ratios')

    def __init__(self, arch: Union[str, dict] = 'tiny', in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3), out_norm: bool = True,
                 drop_rate: float = 0., attn_drop_rate: float = 0.,
                 drop_path_rate: Optional[float] = None, qkv_bias: bool = True,
                 frozen_stages: int = -1, norm_eval: bool = False, with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        arch = self._parse_arch(arch)
        self.arch = arch
        self.embed_dims = list(arch['embed_dims'])
        num_stages = len(self.embed_dims)
        self.out_indices = normalize_out_indices(out_indices, num_stages)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        if drop_path_rate is None:
            drop_path_rate = arch.get('drop_path_rate', 0.1)

        c0 = self.embed_dims[0]
        # stem: three 3x3 convs, the first with stride 2 (stride 2 in total)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c0 // 2, 3, 2, 1), nn.BatchNorm2d(c0 // 2), nn.GELU(),
            nn.Conv2d(c0 // 2, c0 // 2, 3, 1, 1), nn.BatchNorm2d(c0 // 2), nn.GELU(),
            nn.Conv2d(c0 // 2, c0 // 2, 3, 1, 1), nn.BatchNorm2d(c0 // 2))
        depths = arch['depths']
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.patch_embeds = nn.ModuleList()
        self.stages = nn.ModuleList()
        prev = c0 // 2
        for i in range(num_stages):
            c = self.embed_dims[i]
            self.patch_embeds.append(PatchEmbed(prev, c))
            self.stages.append(nn.ModuleList([
                HybridPerceptionBlock(c, arch['num_heads'][i], arch['qk_dims'][i],
                                      arch['sr_ratios'][i], arch['mlp_ratios'][i], qkv_bias,
                                      drop_rate, attn_drop_rate, dpr[sum(depths[:i]) + j])
                for j in range(depths[i])
            ]))
            prev = c
        self.out_norm = out_norm
        if out_norm:
            for i in self.out_indices:
                self.add_module(f'norm{i}', nn.LayerNorm(self.embed_dims[i]))
        self._freeze_stages()

    @classmethod
    def _parse_arch(cls, arch: Union[str, dict]) -> dict:
        return resolve_arch('S2AFormer', arch, cls.arch_zoo, cls.arch_keys, per_stage=True)

    def init_weights(self) -> None:
        if self.init_cfg is not None:
            return super().init_weights()
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0, (2.0 / fan_out)**0.5)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        modules = [self.stem]
        for i in range(self.frozen_stages):
            modules += [self.patch_embeds[i], self.stages[i]]
            if self.out_norm and i in self.out_indices:
                modules.append(getattr(self, f'norm{i}'))
        for m in modules:
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> 'S2AFormer':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x = self.stem(x)
        outs = []
        for i, (embed, blocks) in enumerate(zip(self.patch_embeds, self.stages)):
            x = embed(x)  # (B, H, W, C)
            for block in blocks:
                if self.with_cp and x.requires_grad:
                    x = cp.checkpoint(block, x, use_reentrant=False)
                else:
                    x = block(x)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(x) if self.out_norm else x
                outs.append(out.permute(0, 3, 1, 2).contiguous())
            x = x.permute(0, 3, 1, 2)
        return tuple(outs)


def ssa_flops(embed_dims: int, hw: Tuple[int, int], qk_dims: int, sr_ratio: int) -> int:
    """Forward FLOPs (2 per multiply-add) of one :class:`StripSelfAttention` on an ``H×W`` map.

    ``Q``: ``2·N·C·d_qk``; reduction conv (depth-wise ``r×r``, stride ``r`` on the padded map):
    ``2·N_r·C·r²``; ``K``: ``2·N_r·C·d_qk``; ``V``: ``2·N_r·C²``; ``QKᵀ``: ``2·N·N_r·d_qk``;
    ``AV``: ``2·N·N_r·C``; projection ``2·N·C²`` (norms, softmax, biases not counted, as in
    ``FlopCounterMode``). ``ssa_flops(C, hw, C, 1)`` is a plain full-width MHSA
    (``8·N·C² + 4·N²·C``).
    """
    h, w = hw
    r = sr_ratio
    n, c = h * w, embed_dims
    nr = -(-h // r) * -(-w // r)
    conv = 2 * nr * c * r * r if r > 1 else 0
    return (2 * n * c * qk_dims + conv + 2 * nr * c * qk_dims + 2 * nr * c * c
            + 2 * n * nr * qk_dims + 2 * n * nr * c + 2 * n * c * c)
