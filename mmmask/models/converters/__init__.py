"""Key maps from official checkpoints to mmmask modules (used by tools/model_converters)."""
from .common import ConversionError, unwrap_state_dict
from .ppma import convert_ppma
from .stdc import convert_stdc, stdc_arch_of

__all__ = ['ConversionError', 'unwrap_state_dict', 'convert_ppma', 'convert_stdc', 'stdc_arch_of']
from .eco_m2f import convert_eco_m2f, convert_eco_m2f_pixel_decoder

__all__ += ['convert_eco_m2f', 'convert_eco_m2f_pixel_decoder']
from .vitp import convert_vitp, vitp_arch_of

__all__ += ['convert_vitp', 'vitp_arch_of']
from .kmax import convert_kmax, convert_kmax_pixel_decoder, convert_kmax_transformer_decoder

__all__ += ['convert_kmax', 'convert_kmax_pixel_decoder', 'convert_kmax_transformer_decoder']
from .gmml import convert_gmml  # noqa: E402
from .hi_end_mae import convert_hi_end_mae  # noqa: E402
from .hpm import convert_hpm  # noqa: E402
from .maskalign import convert_hf_clip_vision, convert_maskalign  # noqa: E402

__all__ += ['convert_gmml', 'convert_hi_end_mae', 'convert_hpm', 'convert_maskalign',
            'convert_hf_clip_vision']
from .cvt import *  # noqa: F401,F403,E402
from .gmm_vit import *  # noqa: F401,F403,E402
from .crossvit import *  # noqa: F401,F403,E402
from .sparsifiner import *  # noqa: F401,F403,E402
from .dvt import *  # noqa: F401,F403,E402
