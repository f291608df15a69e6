"""One masking library for every masked-modeling objective (see ``base.py`` for the interface)."""
from .base import (BaseMaskGenerator, MaskPair, MaskSample, num_visible, sample_from_mask,
                   sample_from_order, token_to_pixel_mask, training_progress)
from .feature_mask import random_patch_mask
from .gmml import GMMLCorruption, group_mask
from .strategies import (AttentionGuidedMasking, BlockwiseMasking, CoarseRandomMasking,
                         DoubleMasking, HardPatchMasking, ProgressiveRedundantMasking,
                         RandomMasking)

__all__ = [
    'BaseMaskGenerator', 'MaskSample', 'MaskPair', 'num_visible', 'sample_from_order',
    'sample_from_mask', 'token_to_pixel_mask', 'training_progress', 'RandomMasking',
    'BlockwiseMasking', 'CoarseRandomMasking', 'HardPatchMasking', 'AttentionGuidedMasking',
    'DoubleMasking', 'ProgressiveRedundantMasking', 'random_patch_mask', 'GMMLCorruption',
    'group_mask'
]
