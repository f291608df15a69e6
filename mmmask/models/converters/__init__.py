"""Key maps from official checkpoints to mmmask modules (used by tools/model_converters)."""
from .common import ConversionError, unwrap_state_dict
from .ppma import convert_ppma

__all__ = ['ConversionError', 'unwrap_state_dict', 'convert_ppma']
