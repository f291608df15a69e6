from .attention_bias import (DenseBias, LogitBias, MaskedBias, MultiplicativeBias,
                             PolylinePathBias, PolylinePathDecay, ScaledBias, biased_softmax,
                             segment_sum)
from .biased_attention import BiasedSelfAttention, swap_attention
from .pem_pixel_decoder import ContextSelfModulation, DeformLayer, PEMPixelDecoder
from .pem_transformer_decoder import (PEMTransformerDecoder, PEMTransformerDecoderLayer,
                                      PrototypeCrossAttention)

__all__ = ['LogitBias', 'DenseBias', 'MultiplicativeBias', 'MaskedBias', 'ScaledBias',
           'BiasedSelfAttention', 'swap_attention', 'PolylinePathBias', 'PolylinePathDecay', 'biased_softmax',
           'segment_sum', 'ContextSelfModulation', 'DeformLayer', 'PEMPixelDecoder',
           'PEMTransformerDecoder', 'PEMTransformerDecoderLayer', 'PrototypeCrossAttention']
from .eco_m2f import (EarlyExitMSDeformAttnPixelDecoder, ExitGate, eco_gate_loss,
                      eco_gate_targets)

__all__ += ['ExitGate', 'EarlyExitMSDeformAttnPixelDecoder', 'eco_gate_loss', 'eco_gate_targets']
from .kmax_pixel_decoder import (AxialAttention1d, AxialAttention2d, KMaXBlock,
                                 KMaXPixelDecoder, RelativePositionalEncoding, ResizedFuse,
                                 relative_distance_index)

__all__ += ['AxialAttention1d', 'AxialAttention2d', 'KMaXBlock', 'KMaXPixelDecoder',
            'RelativePositionalEncoding', 'ResizedFuse', 'relative_distance_index']
from .kmax_transformer_decoder import (KMaXAuxSemanticHead, KMaXPredictor, KMaXTransformerDecoder,
                                       KMaXTransformerLayer)

__all__ += ['KMaXPredictor', 'KMaXTransformerLayer', 'KMaXTransformerDecoder',
            'KMaXAuxSemanticHead']
from .mfm_rebuilder import MFMRebuilder, random_patch_mask

__all__ += ['MFMRebuilder', 'random_patch_mask']
from .dvt import *  # noqa: F401,F403,E402
from .topk_sparsity import *  # noqa: F401,F403,E402
from .attention_temperature import *  # noqa: F401,F403,E402
