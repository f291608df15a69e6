from .pem_head import PEMHead, PEMSegHead
from .ppma_head import PPMAClsHead

__all__ = ['PPMAClsHead', 'PEMHead', 'PEMSegHead']
