"""dSVA: generative dual self-supervised ViT features attack (Wu, Tan, Ma, Ma, Zhu & Li,
"Boosting Generative Adversarial Transferability with Self-supervised Vision Transformer
Features", ICCV 2025, arXiv 2506.21046; official repo spencerwooo/dSVA, README only).

A ResNet-style image-to-image generator ``G`` is trained so that the adversarial image

    x_adv = clip_[0,1]( x + clip_[-eps,eps]( G(x) - x ) )            (``project_linf``)

disrupts the features of two *frozen self-supervised ViTs*: a contrastive (CL, e.g. DINO)
teacher, whose features the paper calls *global structural*, and a masked-image-modelling (MIM,
e.g. MAE) teacher, whose features it calls *local textural*; the generator is also trained with
the teachers' *attention mechanism*. At test time only ``G`` is used (one forward pass per image),
against black-box classifiers it has never seen.

What is taken from public code: the generator is the CDA/BIA ``GeneratorResnet`` (ngf=64, two
stride-2 downsamplings, 6 residual blocks with dropout 0.5, two transposed-conv upsamplings, a
7x7 output conv and ``(tanh + 1) / 2``), the architecture of the released dSVA generator as loaded
by the TransferAttack framework (``transferattack/generation/dSVA.py``: same module names, so its
``model.pth`` loads into :class:`DSVAResNetGenerator`), and the inference rule of the first
author's torchattack ``GenerativeAttack`` (clip ``G(x) - x`` to eps, then to the pixel range;
default eps 10/255).

What is an assumption (the paper's loss text was not retrievable; see configs/dsva/README.md):

* CL loss: cosine similarity of the *whole* token map (all tokens of a layer flattened, per
  image) between clean and adversarial images (``global`` similarity), BIA-style;
* MIM loss: per-token cosine similarity averaged over tokens (``local`` similarity);
* attention loss: cosine similarity of the head-averaged CLS-to-patch attention of the chosen
  layers between clean and adversarial images, for each teacher;
* the generator *minimises* ``w_cl * L_cl + w_mim * L_mim + w_attn * L_attn`` (all similarities
  are in [-1, 1]; lower = more disrupted).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor

from ...registry import MODELS

__all__ = [
    'DSVAResidualBlock', 'DSVAResNetGenerator', 'DSVAAttack', 'project_linf',
    'global_feature_similarity', 'local_feature_similarity', 'cls_attention',
    'attention_similarity', 'dsva_loss', 'timm_vit_to_mmpretrain'
]


# --------------------------------------------------------------------------------------------
# generator
# --------------------------------------------------------------------------------------------
class DSVAResidualBlock(nn.Module):
    """Residual block of the CDA/BIA generator: (pad, 3x3 conv, BN, ReLU, dropout, pad, 3x3 conv,
    BN) + identity. ``block`` indices match the released checkpoints."""

    def __init__(self, channels: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=0, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(True),
            nn.Dropout(dropout),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=0, bias=False),
            nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


@MODELS.register_module()
class DSVAResNetGenerator(nn.Module):
    """ResNet encoder-decoder generator (the dSVA/CDA/BIA ``GeneratorResnet``).

    Input and output are images in [0, 1] (RGB); the output is an *unrestricted* image
    ``(tanh(y) + 1) / 2`` that :func:`project_linf` turns into an eps-bounded adversarial image.

    Args:
        ngf: base width (released generators: 64).
        num_blocks: residual blocks at 1/4 resolution (released: 6).
        dropout: dropout inside the residual blocks (released: 0.5).
        inception: crop one row/column (299 px inputs), as the original ``inception`` flag.

    Module names (``block1..3``, ``resblock1..N``, ``upsampl1..2``, ``blockf``) follow the
    released checkpoints, so a released ``state_dict`` loads with ``load_state_dict``.
    """

    def __init__(self, ngf: int = 64, num_blocks: int = 6, dropout: float = 0.5,
                 inception: bool = False) -> None:
        super().__init__()
        if num_blocks < 1:
            raise ValueError(f'num_blocks must be >= 1, got {num_blocks}')
        self.ngf, self.num_blocks, self.inception = ngf, num_blocks, inception
        self.block1 = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, kernel_size=7, padding=0, bias=False),
            nn.BatchNorm2d(ngf), nn.ReLU(True))
        self.block2 = nn.Sequential(
            nn.Conv2d(ngf, ngf * 2, kernel_size=3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(ngf * 2), nn.ReLU(True))
        self.block3 = nn.Sequential(
            nn.Conv2d(ngf * 2, ngf * 4, kernel_size=3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(ngf * 4), nn.ReLU(True))
        for i in range(num_blocks):
            self.add_module(f'resblock{i + 1}', DSVAResidualBlock(ngf * 4, dropout))
        self.upsampl1 = nn.Sequential(
            nn.ConvTranspose2d(ngf * 4, ngf * 2, kernel_size=3, stride=2, padding=1,
                               output_padding=1, bias=False),
            nn.BatchNorm2d(ngf * 2), nn.ReLU(True))
        self.upsampl2 = nn.Sequential(
            nn.ConvTranspose2d(ngf * 2, ngf, kernel_size=3, stride=2, padding=1,
                               output_padding=1, bias=False),
            nn.BatchNorm2d(ngf), nn.ReLU(True))
        self.blockf = nn.Sequential(nn.ReflectionPad2d(3),
                                    nn.Conv2d(ngf, 3, kernel_size=7, padding=0))
        self.crop = nn.ConstantPad2d((0, -1, -1, 0), 0)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f'the generator takes [B, 3, H, W] images in [0, 1], got '
                             f'{tuple(x.shape)}')
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f'image size {tuple(x.shape[-2:])} must be divisible by 4 (two '
                             'stride-2 stages); resize the images first')
        y = self.block3(self.block2(self.block1(x)))
        for i in range(self.num_blocks):
            y = getattr(self, f'resblock{i + 1}')(y)
        y = self.blockf(self.upsampl2(self.upsampl1(y)))
        if self.inception:
            y = self.crop(y)
        return (torch.tanh(y) + 1) / 2


def project_linf(unrestricted: Tensor, clean: Tensor, eps: float, clip_min: float = 0.0,
                 clip_max: float = 1.0) -> Tensor:
    """``clip(clean + clip(unrestricted - clean, -eps, eps), clip_min, clip_max)``: the
    generator output projected to the L-inf ball of radius ``eps`` around ``clean`` and to the
    valid pixel range (torchattack ``GenerativeAttack.forward``; BIA/CDA training)."""
    if eps < 0:
        raise ValueError(f'eps must be >= 0, got {eps}')
    delta = torch.clamp(unrestricted - clean, -eps, eps)
    return torch.clamp(clean + delta, clip_min, clip_max)


# --------------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------------
def _as_tokens(feat: Tensor) -> Tensor:
    """``[B, N, C]`` tokens as they are; ``[B, C, H, W]`` maps as ``[B, HW, C]`` tokens."""
    if isinstance(feat, (tuple, list)):
        feat = feat[0]
    if feat.dim() == 4:
        return feat.flatten(2).transpose(1, 2)
    if feat.dim() != 3:
        raise ValueError(f'teacher features must be [B, N, C] or [B, C, H, W], got '
                         f'{tuple(feat.shape)}')
    return feat


def global_feature_similarity(clean: Tensor, adv: Tensor) -> Tensor:
    """Mean over images of cos(flatten(clean_b), flatten(adv_b)): the whole token map as one
    vector (global structure; the CL teacher's term). Shape-agnostic beyond the batch dim."""
    return F.cosine_similarity(clean.flatten(1), adv.flatten(1), dim=1, eps=1e-8).mean()


def local_feature_similarity(clean: Tensor, adv: Tensor) -> Tensor:
    """Mean over images and tokens of the per-token cosine similarity (local texture; the MIM
    teacher's term). ``clean``/``adv``: ``[B, N, C]`` tokens or ``[B, C, H, W]`` maps."""
    clean, adv = _as_tokens(clean), _as_tokens(adv)
    return F.cosine_similarity(clean, adv, dim=-1, eps=1e-8).mean()


def cls_attention(x: Tensor, attn: nn.Module, num_extra_tokens: int = 1) -> Tensor:
    """Head-averaged attention of the first (CLS) token over the patch tokens, ``[B, N - e]``.

    ``x`` is the input of ``attn``, an attention module with ``qkv`` (Linear to 3*C),
    ``num_heads`` and ``head_dims`` (mmpretrain ``MultiheadAttention``, mmmask
    ``BiasedSelfAttention``-style modules); scale ``head_dims ** -0.5`` unless ``attn.scale``.
    The probabilities are recomputed from q and k because the fused SDPA does not return them.
    """
    if not all(hasattr(attn, a) for a in ('qkv', 'num_heads')):
        raise TypeError(f'{type(attn).__name__} has no qkv/num_heads: name a ViT attention '
                        'module (e.g. backbone.layers.11.attn) in attention_layers')
    b, n, _ = x.shape
    heads = int(attn.num_heads)
    qkv = attn.qkv(x)
    hd = qkv.shape[-1] // (3 * heads)
    qkv = qkv.reshape(b, n, 3, heads, hd).permute(2, 0, 3, 1, 4)
    q, k = qkv[0], qkv[1]
    scale = getattr(attn, 'scale', None)
    scale = float(scale) if isinstance(scale, (int, float)) else hd ** -0.5
    probs = torch.softmax((q[:, :, :1] @ k.transpose(-2, -1)) * scale, dim=-1)  # [B, h, 1, N]
    return probs[:, :, 0, num_extra_tokens:].mean(1)


def attention_similarity(clean: Tensor, adv: Tensor) -> Tensor:
    """Mean over images of cos(clean attention map, adversarial attention map)."""
    return F.cosine_similarity(clean.flatten(1), adv.flatten(1), dim=1, eps=1e-8).mean()


def dsva_loss(cl_clean: Sequence[Tensor], cl_adv: Sequence[Tensor],
              mim_clean: Sequence[Tensor], mim_adv: Sequence[Tensor],
              attn_clean: Sequence[Tensor] = (), attn_adv: Sequence[Tensor] = (),
              cl_weight: float = 1.0, mim_weight: float = 1.0,
              attn_weight: float = 1.0) -> Dict[str, Tensor]:
    """The dual feature-disruption objective (to *minimise*), averaged over the given layers:
    ``cl_weight * mean_l global_sim + mim_weight * mean_l local_sim + attn_weight * mean attn_sim``.
    Returns the weighted terms ``loss_cl``, ``loss_mim``, ``loss_attn`` (absent when unused)."""
    out: Dict[str, Tensor] = {}

    def _mean(fn, a, b):
        if len(a) != len(b):
            raise ValueError(f'{len(a)} clean vs {len(b)} adversarial feature maps')
        return torch.stack([fn(x, y) for x, y in zip(a, b)]).mean()

    if cl_weight and len(cl_clean):
        out['loss_cl'] = cl_weight * _mean(global_feature_similarity, cl_clean, cl_adv)
    if mim_weight and len(mim_clean):
        out['loss_mim'] = mim_weight * _mean(local_feature_similarity, mim_clean, mim_adv)
    if attn_weight and len(attn_clean):
        out['loss_attn'] = attn_weight * _mean(attention_similarity, attn_clean, attn_adv)
    if not out:
        raise ValueError('dSVA loss has no term: give teacher layers and non-zero weights')
    return out


def timm_vit_to_mmpretrain(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Rename a timm/DeiT-layout ViT ``state_dict`` (the official DINO
    ``dino_vitbase16_pretrain.pth`` and MAE ``mae_pretrain_vit_base.pth`` releases: ``blocks.i.norm1``, ``attn.qkv``,
    ``mlp.fc1``, ``norm``) to mmpretrain ``VisionTransformer`` keys. Heads/decoders are dropped."""
    out: Dict[str, Tensor] = {}
    for k, v in state_dict.items():
        k = k[len('module.'):] if k.startswith('module.') else k
        if k.startswith(('head', 'decoder', 'mask_token', 'fc_norm')):
            continue
        if k.startswith('blocks.'):
            k = 'layers.' + k[len('blocks.'):]
            k = (k.replace('.norm1.', '.ln1.').replace('.norm2.', '.ln2.')
                 .replace('.mlp.fc1.', '.ffn.layers.0.0.').replace('.mlp.fc2.', '.ffn.layers.1.'))
        elif k.startswith('norm.'):
            k = 'ln1.' + k[len('norm.'):]
        elif k.startswith('patch_embed.proj.'):
            k = 'patch_embed.projection.' + k[len('patch_embed.proj.'):]
        out[k] = v
    return out


# --------------------------------------------------------------------------------------------
# the trainable attack
# --------------------------------------------------------------------------------------------
class _Teacher(nn.Module):
    """A frozen feature extractor: a module built from a config (mmpretrain backbone or whole
    model), own input normalisation, forward hooks on named layers (features) and attention
    modules (CLS attention, recomputed from q/k)."""

    def __init__(self, model: Union[dict, nn.Module], feature_layers: Sequence[str],
                 attention_layers: Sequence[str] = (), mean: Sequence[float] = (0.485, 0.456,
                                                                                  0.406),
                 std: Sequence[float] = (0.229, 0.224, 0.225), pretrained: Optional[str] = None,
                 pretrained_prefix: Optional[str] = None, pretrained_format: str = 'mmpretrain',
                 num_extra_tokens: int = 1,
                 input_size: Optional[Tuple[int, int]] = None) -> None:
        super().__init__()
        self.model = MODELS.build(model) if isinstance(model, dict) else model
        self.feature_layers = list(feature_layers)
        self.attention_layers = list(attention_layers)
        if not self.feature_layers and not self.attention_layers:
            raise ValueError('a dSVA teacher needs feature_layers and/or attention_layers')
        modules = dict(self.model.named_modules())
        for name in self.feature_layers + self.attention_layers:
            if name not in modules:
                cands = [n for n in modules if n.count('.') <= 2][:20]
                raise KeyError(f'teacher has no submodule {name!r}; e.g. {cands}')
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)
        self.pretrained, self.pretrained_prefix = pretrained, pretrained_prefix
        if pretrained_format not in ('mmpretrain', 'timm'):
            raise ValueError(f"pretrained_format must be 'mmpretrain' or 'timm' (official "
                             f"DINO/MAE releases), got {pretrained_format!r}")
        self.pretrained_format = pretrained_format
        self.num_extra_tokens = num_extra_tokens
        self.input_size = tuple(input_size) if input_size else None
        self._feats: Dict[str, Tensor] = {}
        self._attn_in: Dict[str, Tensor] = {}
        for name in self.feature_layers:
            modules[name].register_forward_hook(self._feat_hook(name))
        for name in self.attention_layers:
            modules[name].register_forward_pre_hook(self._attn_hook(name))
        self.requires_grad_(False)

    def _feat_hook(self, name):
        def hook(module, args, output):
            self._feats[name] = output
        return hook

    def _attn_hook(self, name):
        def hook(module, args):
            self._attn_in[name] = args[0]
        return hook

    def init_weights(self) -> None:
        """The teacher model's own ``init_weights`` (e.g. an ``init_cfg`` of type Pretrained),
        then ``pretrained`` if given."""
        if hasattr(self.model, 'init_weights'):
            self.model.init_weights()
        self.load()

    def load(self) -> None:
        if not self.pretrained:
            return
        from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model
        ckpt = _load_checkpoint(self.pretrained, map_location='cpu')
        state = ckpt.get('state_dict', ckpt.get('model', ckpt))
        if self.pretrained_prefix:
            p = self.pretrained_prefix
            state = {k[len(p):]: v for k, v in state.items() if k.startswith(p)}
        if self.pretrained_format == 'timm':
            state = timm_vit_to_mmpretrain(state)
        own = self.model.state_dict()
        missing = [k for k in own if k not in state]
        if len(missing) == len(own):
            raise KeyError(f'{self.pretrained}: no key matches the teacher (prefix '
                           f'{self.pretrained_prefix!r}?); checkpoint keys e.g. '
                           f'{list(state)[:5]}, teacher keys e.g. {list(own)[:5]}')
        _load_checkpoint_to_model(self.model, state, strict=False)
        self.requires_grad_(False)

    def forward(self, x01: Tensor) -> Tuple[List[Tensor], List[Tensor]]:
        """Features of ``feature_layers`` and CLS attentions of ``attention_layers`` for
        images in [0, 1]."""
        if self.input_size and tuple(x01.shape[-2:]) != self.input_size:
            x01 = F.interpolate(x01, size=self.input_size, mode='bilinear', align_corners=False)
        self._feats, self._attn_in = {}, {}
        self.model((x01 - self.mean) / self.std)
        feats = [self._feats[n] for n in self.feature_layers]
        attns = [cls_attention(self._attn_in[n], dict(self.model.named_modules())[n],
                               self.num_extra_tokens) for n in self.attention_layers]
        return feats, attns


@MODELS.register_module()
class DSVAAttack(BaseModel):
    """dSVA generator training against a contrastive (CL) and a masked-modelling (MIM) frozen
    self-supervised ViT; trained by ``tools/train.py`` like any mmengine model.

    Args:
        generator: generator config (default ``mmmask.DSVAResNetGenerator``) or module.
        cl_teacher / mim_teacher: ``dict(model=<config of a backbone/model>, feature_layers=[...],
            attention_layers=[...], mean=, std= (0-1 scale, the teacher's own normalisation),
            pretrained=, pretrained_prefix=, pretrained_format='mmpretrain'|'timm',
            num_extra_tokens=1, input_size=None)``. Either may be
            ``None`` (single-teacher ablation). Teacher weights are loaded in ``init_weights``
            (``pretrained``) or through the model config's ``init_cfg``.
        eps: L-inf budget on the [0, 1] scale (default 10/255 as the released generative attacks).
        cl_weight, mim_weight, attn_weight: weights of the three similarity terms.
        data_preprocessor: turns loader images into [0, 1] RGB (default: mean 0, std 255,
            to_rgb=True).

    ``forward(mode='tensor')`` returns the adversarial images in [0, 1]; ``predict`` returns
    data samples with ``adv_img`` (``[3, H, W]`` in [0, 1]) and ``linf`` (achieved L-inf).
    """

    def __init__(self,
                 generator: Union[dict, nn.Module] = dict(type='mmmask.DSVAResNetGenerator'),
                 cl_teacher: Optional[dict] = None,
                 mim_teacher: Optional[dict] = None,
                 eps: float = 10 / 255,
                 cl_weight: float = 1.0,
                 mim_weight: float = 1.0,
                 attn_weight: float = 1.0,
                 clip_min: float = 0.0,
                 clip_max: float = 1.0,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='mmpretrain.ClsDataPreprocessor', mean=[0., 0., 0.],
                                     std=[255., 255., 255.], to_rgb=True)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if cl_teacher is None and mim_teacher is None:
            raise ValueError('dSVA needs at least one teacher (cl_teacher and/or mim_teacher)')
        if not 0 < eps <= 1:
            raise ValueError(f'eps is on the [0, 1] pixel scale (e.g. 10/255), got {eps}')
        self.generator = MODELS.build(generator) if isinstance(generator, dict) else generator
        self.cl_teacher = _Teacher(**cl_teacher) if cl_teacher is not None else None
        self.mim_teacher = _Teacher(**mim_teacher) if mim_teacher is not None else None
        self.eps, self.clip_min, self.clip_max = float(eps), float(clip_min), float(clip_max)
        self.cl_weight, self.mim_weight = float(cl_weight), float(mim_weight)
        self.attn_weight = float(attn_weight)

    def _teachers(self) -> List[_Teacher]:
        return [t for t in (self.cl_teacher, self.mim_teacher) if t is not None]

    def train(self, mode: bool = True) -> 'DSVAAttack':
        super().train(mode)
        for t in self._teachers():
            t.eval()  # frozen: no dropout / BN updates in the teachers
        return self

    def attack(self, x01: Tensor) -> Tensor:
        """Adversarial images (in [clip_min, clip_max]) for clean images ``x01`` in [0, 1]."""
        return project_linf(self.generator(x01), x01, self.eps, self.clip_min, self.clip_max)

    def forward(self, inputs: Tensor, data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.attack(inputs)
        raise RuntimeError(f'Invalid mode "{mode}"')

    def loss(self, inputs: Tensor, data_samples: Optional[list] = None) -> Dict[str, Tensor]:
        adv = self.attack(inputs)
        cl_c = cl_a = mim_c = mim_a = []
        att_c: List[Tensor] = []
        att_a: List[Tensor] = []
        if self.cl_teacher is not None:
            with torch.no_grad():
                cl_c, ac = self.cl_teacher(inputs)
            cl_a, aa = self.cl_teacher(adv)
            att_c += ac
            att_a += aa
        if self.mim_teacher is not None:
            with torch.no_grad():
                mim_c, ac = self.mim_teacher(inputs)
            mim_a, aa = self.mim_teacher(adv)
            att_c += ac
            att_a += aa
        losses = dsva_loss(cl_c, cl_a, mim_c, mim_a, att_c, att_a, self.cl_weight,
                           self.mim_weight, self.attn_weight)
        with torch.no_grad():
            losses['linf'] = (adv - inputs).abs().amax()
        return losses

    def predict(self, inputs: Tensor, data_samples: Optional[list] = None) -> list:
        from mmengine.structures import BaseDataElement
        with torch.no_grad():
            adv = self.attack(inputs)
        if data_samples is None:
            data_samples = [BaseDataElement() for _ in range(inputs.shape[0])]
        for i, ds in enumerate(data_samples):
            ds.set_field(adv[i].detach(), 'adv_img', field_type='data')
            ds.set_field(float((adv[i] - inputs[i]).abs().max()), 'linf', field_type='metainfo')
        return data_samples
