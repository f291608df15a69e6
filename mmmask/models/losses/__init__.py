"""Losses: kMaX-DeepLab mask-classification criterion and PolyMaX dense-regression losses."""
from .dense_regression import NormalAngularLoss, SILogRelSqrLoss
from .kmax_loss import KMaXCriterion, kmax_hungarian_match, semantic_to_masks

__all__ = [
    'KMaXCriterion', 'kmax_hungarian_match', 'semantic_to_masks', 'SILogRelSqrLoss',
    'NormalAngularLoss'
]
