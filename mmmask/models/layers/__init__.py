from .attention_bias import (DenseBias, LogitBias, PolylinePathBias, PolylinePathDecay,
                             biased_softmax, segment_sum)
from .pem_pixel_decoder import ContextSelfModulation, DeformLayer, PEMPixelDecoder
from .pem_transformer_decoder import (PEMTransformerDecoder, PEMTransformerDecoderLayer,
                                      PrototypeCrossAttention)

__all__ = ['LogitBias', 'DenseBias', 'PolylinePathBias', 'PolylinePathDecay', 'biased_softmax',
           'segment_sum', 'ContextSelfModulation', 'DeformLayer', 'PEMPixelDecoder',
           'PEMTransformerDecoder', 'PEMTransformerDecoderLayer', 'PrototypeCrossAttention']
from .eco_m2f import (EarlyExitMSDeformAttnPixelDecoder, ExitGate, eco_gate_loss,
                      eco_gate_targets)

__all__ += ['ExitGate', 'EarlyExitMSDeformAttnPixelDecoder', 'eco_gate_loss', 'eco_gate_targets']
