from .ppma import PPMA
from .stdc import STDCNetS4

__all__ = ['PPMA', 'STDCNetS4']
from .cvt import *  # noqa: F401,F403,E402
from .gmm_vit import *  # noqa: F401,F403,E402
from .with_attention_bias import *  # noqa: F401,F403,E402
from .hyena_nd import *  # noqa: F401,F403,E402
from .path_ensemble import *  # noqa: F401,F403,E402
from .lookupvit import *  # noqa: F401,F403,E402
from .s2aformer import *  # noqa: F401,F403,E402
from .crossvit import *  # noqa: F401,F403,E402
from .layer_masked_resnet import *  # noqa: F401,F403,E402
from .sparsifiner import *  # noqa: F401,F403,E402
from .denoised_vit import *  # noqa: F401,F403,E402
