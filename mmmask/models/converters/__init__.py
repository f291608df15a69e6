"""Key maps from official checkpoints to mmmask modules (used by tools/model_converters)."""
from .common import ConversionError, unwrap_state_dict
from .ppma import convert_ppma
from .stdc import convert_stdc, stdc_arch_of

__all__ = ['ConversionError', 'unwrap_state_dict', 'convert_ppma', 'convert_stdc', 'stdc_arch_of']
