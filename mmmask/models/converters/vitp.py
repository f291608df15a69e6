"""Official ViT-P point classifiers and DINOv2 pretrain weights -> ``ViTPPointClassifier`` keys."""
from typing import Dict, Optional, Tuple

from torch import Tensor

from .common import ConversionError, rename_keys

#: (official DINOv2 / ViT-P key regex, mmmask key). ``blocks.{chunk}.{i}`` (block_chunks > 0)
#: and ``blocks.{i}`` both map to ``layers.{i}``; mask/cls/register tokens are not used by ViT-P.
_BLOCK = r'blocks\.(?:\d+\.)?(\d+)\.'
_RULES = [
    (r'pos_embed', 'encoder.pos_embed'),
    (r'patch_embed\.proj\.(weight|bias)', r'encoder.patch_embed.projection.\1'),
    (r'cls_embeddings\.weight', 'encoder.point_embed.weight'),
    (_BLOCK + r'norm1\.(weight|bias)', r'encoder.layers.\1.ln1.\2'),
    (_BLOCK + r'attn\.(qkv|proj)\.(weight|bias)', r'encoder.layers.\1.attn.\2.\3'),
    (_BLOCK + r'ls1\.gamma', r'encoder.layers.\1.attn.gamma1.weight'),
    (_BLOCK + r'norm2\.(weight|bias)', r'encoder.layers.\1.ln2.\2'),
    (_BLOCK + r'mlp\.fc1\.(weight|bias)', r'encoder.layers.\1.ffn.layers.0.0.\2'),
    (_BLOCK + r'mlp\.fc2\.(weight|bias)', r'encoder.layers.\1.ffn.layers.1.\2'),
    (_BLOCK + r'ls2\.gamma', r'encoder.layers.\1.ffn.gamma2.weight'),
    (r'norm\.(weight|bias)', r'encoder.ln1.\1'),
    (r'head\.(weight|bias)', r'head.\1'),
    (r'(mask_token|cls_token|register_tokens)', None),
]


def convert_vitp(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Rename an official ViT-P classifier (or a DINOv2 ``*_pretrain.pth``) state dict.

    A DINOv2 pretrain checkpoint has no ``cls_embeddings``/``head``: the converted dict then lacks
    ``encoder.point_embed.weight`` and ``head.*``, which keep their init (as the official training
    starts). FSDP (``_fsdp_wrapped_module.``) and DDP (``module.``) prefixes are stripped.
    """
    clean = {}
    for key, value in state_dict.items():
        for prefix in ('_fsdp_wrapped_module.', 'module.', 'backbone.'):
            key = key.replace(prefix, '')
        clean[key] = value
    if 'patch_embed.proj.weight' not in clean:
        raise ConversionError('not a DINOv2/ViT-P checkpoint: no patch_embed.proj.weight '
                              f'(first keys: {", ".join(list(state_dict)[:8])})')
    if any(k.startswith('blocks.') and '.ffn.' in k or 'w12' in k for k in clean):
        raise ConversionError('SwiGLU-FFN DINOv2 (ViT-g) checkpoints are not supported: ViT-P '
                              'uses the MLP FFN of ViT-S/B/L')
    return dict(rename_keys(clean, _RULES, 'DINOv2/ViT-P'))


def vitp_arch_of(converted: Dict[str, Tensor]) -> Tuple[dict, int, Optional[int]]:
    """``(arch dict, patch size, num_classes or None)`` read from converted weights."""
    dims = converted['encoder.patch_embed.projection.weight'].shape[0]
    patch = converted['encoder.patch_embed.projection.weight'].shape[-1]
    depth = 1 + max(int(k.split('.')[2]) for k in converted if k.startswith('encoder.layers.'))
    ffn = converted['encoder.layers.0.ffn.layers.0.0.weight'].shape[0]
    heads = {384: 6, 768: 12, 1024: 16, 1536: 24}.get(dims, max(1, dims // 64))
    arch = dict(embed_dims=dims, num_layers=depth, num_heads=heads, feedforward_channels=ffn)
    num_classes = converted['head.weight'].shape[0] if 'head.weight' in converted else None
    return arch, patch, num_classes
