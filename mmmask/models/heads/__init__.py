from .ppma_head import PPMAClsHead

__all__ = ['PPMAClsHead']
