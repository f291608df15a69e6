"""Self-supervised pretraining: shared pieces (external-mask ViT, EMA teacher, attention maps)
and the objectives built on them."""
from .attention_maps import AttentionRecorder, attention_probs, recorded_attention
from .ema_teacher import EMATeacher, ema_decay
from .masked_vit import MaskedViT, MaskedViTOutput

__all__ = ['MaskedViT', 'MaskedViTOutput', 'EMATeacher', 'ema_decay', 'AttentionRecorder',
           'attention_probs', 'recorded_attention']

# objectives
from . import cmae, gmml, hi_end_mae, hpm, maskalign, mto  # noqa: E402
from .cmae import *  # noqa: F401,F403,E402
from .gmml import *  # noqa: F401,F403,E402
from .hi_end_mae import *  # noqa: F401,F403,E402
from .hpm import *  # noqa: F401,F403,E402
from .maskalign import *  # noqa: F401,F403,E402
from .mto import *  # noqa: F401,F403,E402

for _module in (cmae, gmml, hi_end_mae, hpm, maskalign, mto):
    __all__ += list(_module.__all__)
