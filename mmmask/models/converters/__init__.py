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
