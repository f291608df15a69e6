"""Official CvT checkpoints (github.com/leoxiaobin/CvT, ``ConvolutionalVisionTransformer``) to an
mmpretrain ``ImageClassifier`` with :class:`mmmask.CvT` backbone and ``LinearClsHead``.

Official layout: ``stage{i}.patch_embed.{proj,norm}``, ``stage{i}.cls_token``,
``stage{i}.blocks.{j}.{norm1,norm2,attn.*,mlp.fc1,mlp.fc2}`` with ``attn.conv_proj_{q,k,v}.
{conv,bn}`` and ``attn.proj{,_q,_k,_v}``, the final ``norm`` and ``head`` (Linear); a DDP
checkpoint prefixes ``module.``. Output: ``backbone.stages.{i}.{patch_embed.{projection,norm},
cls_token, blocks.{j}.{ln1,ln2,attn.*,ffn.fc1,ffn.fc2}}``, ``backbone.final_norm`` and
``head.fc``.
"""
from typing import Dict, Optional

from torch import Tensor

from .common import ConversionError, rename_keys

__all__ = ['convert_cvt', 'cvt_arch_of']

_STAGE = r'stage(\d+)\.'
_BLOCK = _STAGE + r'blocks\.(\d+)\.'
_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'
_RULES = [
    (_STAGE + r'patch_embed\.proj\.(weight|bias)', r'backbone.stages.\1.patch_embed.projection.\2'),
    (_STAGE + r'patch_embed\.norm\.(weight|bias)', r'backbone.stages.\1.patch_embed.norm.\2'),
    (_STAGE + r'cls_token', r'backbone.stages.\1.cls_token'),
    (_BLOCK + r'norm(1|2)\.(weight|bias)', r'backbone.stages.\1.blocks.\2.ln\3.\4'),
    (_BLOCK + r'attn\.conv_proj_(q|k|v)\.conv\.weight',
     r'backbone.stages.\1.blocks.\2.attn.conv_proj_\3.conv.weight'),
    (_BLOCK + r'attn\.conv_proj_(q|k|v)\.bn\.' + _BN,
     r'backbone.stages.\1.blocks.\2.attn.conv_proj_\3.bn.\4'),
    (_BLOCK + r'attn\.proj(_q|_k|_v|)\.(weight|bias)',
     r'backbone.stages.\1.blocks.\2.attn.proj\3.\4'),
    (_BLOCK + r'mlp\.(fc1|fc2)\.(weight|bias)', r'backbone.stages.\1.blocks.\2.ffn.\3.\4'),
    (r'norm\.(weight|bias)', r'backbone.final_norm.\1'),
    (r'head\.(weight|bias)', r'head.fc.\1'),
]


def convert_cvt(state_dict: Dict[str, Tensor], with_head: bool = True,
                with_final_norm: bool = True) -> Dict[str, Tensor]:
    """Map official CvT keys (``module.`` prefix optional) to mmmask/mmpretrain keys.

    ``with_head=False`` drops ``head.*`` (e.g. to fine-tune on another label set, or a backbone
    for ``init_cfg=dict(type='Pretrained', prefix='backbone.')``); ``with_final_norm=False`` also
    drops the final norm (a dense-prediction backbone with ``out_type='featmap'`` has none).
    Unknown keys raise :class:`ConversionError`.
    """
    state_dict = {k[len('module.'):] if k.startswith('module.') else k: v
                  for k, v in state_dict.items()}
    rules = list(_RULES)
    if not with_head:
        rules[-1] = (rules[-1][0], None)
    if not with_final_norm:
        rules[-2] = (rules[-2][0], None)
    return rename_keys(state_dict, rules, 'official CvT (ConvolutionalVisionTransformer)')


def cvt_arch_of(state_dict: Dict[str, Tensor]) -> Dict[str, list]:
    """What an official state dict says about its arch: ``embed_dims``, ``depths``,
    ``cls_token``, ``patch_sizes``, ``qkv_bias`` and ``qkv_proj_method`` per stage, and
    ``num_classes`` (None without a head). Head counts are not stored in the weights: take them
    from the matching preset or the official yaml."""
    state_dict = {k[len('module.'):] if k.startswith('module.') else k: v
                  for k, v in state_dict.items()}
    n = 0
    while f'stage{n}.patch_embed.proj.weight' in state_dict:
        n += 1
    if not n:
        raise ConversionError('no stage0.patch_embed.proj.weight: not an official CvT checkpoint')
    arch: Dict[str, list] = {k: [] for k in ('embed_dims', 'depths', 'cls_token', 'patch_sizes',
                                             'qkv_bias', 'qkv_proj_method')}
    for i in range(n):
        w = state_dict[f'stage{i}.patch_embed.proj.weight']
        arch['embed_dims'].append(w.shape[0])
        arch['patch_sizes'].append(w.shape[-1])
        depth = 0
        while f'stage{i}.blocks.{depth}.norm1.weight' in state_dict:
            depth += 1
        arch['depths'].append(depth)
        arch['cls_token'].append(f'stage{i}.cls_token' in state_dict)
        arch['qkv_bias'].append(f'stage{i}.blocks.0.attn.proj_q.bias' in state_dict)
        dw = f'stage{i}.blocks.0.attn.conv_proj_k.conv.weight' in state_dict
        arch['qkv_proj_method'].append('dw_bn' if dw else 'avg')
    head: Optional[Tensor] = state_dict.get('head.weight')
    arch['num_classes'] = None if head is None else head.shape[0]
    return arch
