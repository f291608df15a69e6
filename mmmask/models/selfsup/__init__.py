"""Self-supervised pretraining: shared pieces (external-mask ViT, EMA teacher, attention maps)
and the objectives built on them."""
from .attention_maps import AttentionRecorder, attention_probs, recorded_attention
from .ema_teacher import EMATeacher, ema_decay
from .masked_vit import MaskedViT, MaskedViTOutput

__all__ = ['MaskedViT', 'MaskedViTOutput', 'EMATeacher', 'ema_decay', 'AttentionRecorder',
           'attention_probs', 'recorded_attention']
