"""Self-supervised pretraining: shared pieces (external-mask ViT, EMA teacher, attention maps)
and the objectives built on them."""
from .attention_maps import AttentionRecorder, attention_probs, recorded_attention
from .ema_teacher import EMATeacher, ema_decay
from .masked_vit import MaskedViT, MaskedViTOutput

__all__ = ['MaskedViT', 'MaskedViTOutput', 'EMATeacher', 'ema_decay', 'AttentionRecorder',
           'attention_probs', 'recorded_attention']

# objectives
from . import cmae, gmml, hi_end_mae, hpm, maskalign, mto  # noqa: E402
from . import hallucinator, hybrid_distill, mcl, pixpro, tov_vicreg  # noqa: E402
from .cmae import *  # noqa: F401,F403,E402
from .gmml import *  # noqa: F401,F403,E402
from .hi_end_mae import *  # noqa: F401,F403,E402
from .hpm import *  # noqa: F401,F403,E402
from .maskalign import *  # noqa: F401,F403,E402
from .mto import *  # noqa: F401,F403,E402
from .hallucinator import *  # noqa: F401,F403,E402
from .hybrid_distill import *  # noqa: F401,F403,E402
from .mcl import *  # noqa: F401,F403,E402
from .pixpro import *  # noqa: F401,F403,E402
from .tov_vicreg import *  # noqa: F401,F403,E402

for _module in (cmae, gmml, hi_end_mae, hpm, maskalign, mto, hallucinator, hybrid_distill, mcl,
                pixpro, tov_vicreg):
    __all__ += list(_module.__all__)
