from .ppma import PPMA
from .stdc import STDCNetS4

__all__ = ['PPMA', 'STDCNetS4']
from .cvt import *  # noqa: F401,F403,E402
