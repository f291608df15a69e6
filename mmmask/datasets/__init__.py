"""Datasets: the built-in toy world and the dataset helpers of the methods."""
from .toy_data import build_toy_data

__all__ = ['build_toy_data']
from .eco_m2f import LoadExitUtilities, load_exit_utilities

__all__ += ['LoadExitUtilities', 'load_exit_utilities']
from .transforms import (CoarsenSegMap, PackPointInputs, SampleSegmentPoints,
                         SegRandomResizedCrop, SegRandomRotate)

__all__ += ['SegRandomResizedCrop', 'SegRandomRotate', 'CoarsenSegMap', 'SampleSegmentPoints',
            'PackPointInputs']
