from .ppma import PPMA
from .stdc import STDCNetS4

__all__ = ['PPMA', 'STDCNetS4']
