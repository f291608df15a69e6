from .pem_head import PEMHead, PEMSegHead
from .ppma_head import PPMAClsHead

__all__ = ['PPMAClsHead', 'PEMHead', 'PEMSegHead']
from .eco_m2f_head import ECOMask2Former, ECOMask2FormerHead

__all__ += ['ECOMask2FormerHead', 'ECOMask2Former']
from .polymax_head import (PolyMaXDepthHead, PolyMaXNormalHead, PolyMaXSemanticHead,
                           cluster_mixture)

__all__ += ['PolyMaXSemanticHead', 'PolyMaXDepthHead', 'PolyMaXNormalHead', 'cluster_mixture']
from .daformer_head import DAFormerHead, DLV2Head

__all__ += ['DAFormerHead', 'DLV2Head']
from .multi_branch_head import *  # noqa: F401,F403,E402
