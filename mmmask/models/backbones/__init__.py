from .ppma import PPMA

__all__ = ['PPMA']
