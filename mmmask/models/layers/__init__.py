from .attention_bias import (DenseBias, LogitBias, PolylinePathBias, PolylinePathDecay,
                             biased_softmax, segment_sum)

__all__ = ['LogitBias', 'DenseBias', 'PolylinePathBias', 'PolylinePathDecay', 'biased_softmax',
           'segment_sum']
