"""Datasets: the built-in toy world and the dataset helpers of the methods."""
from .toy_data import build_toy_data

__all__ = ['build_toy_data']
from .eco_m2f import LoadExitUtilities, load_exit_utilities

__all__ += ['LoadExitUtilities', 'load_exit_utilities']
from .transforms import (CoarsenSegMap, LoadNormalAnnotation, PackDenseInputs, PackPointInputs,
                         RandomFlipDense, SampleSegmentPoints, SegRandomResizedCrop,
                         SegRandomRotate, MultiViewWithKeys)

__all__ += ['SegRandomResizedCrop', 'SegRandomRotate', 'CoarsenSegMap', 'SampleSegmentPoints',
            'PackPointInputs', 'LoadNormalAnnotation', 'RandomFlipDense', 'PackDenseInputs',
            'MultiViewWithKeys']
from .nyu import NYU40_CLASSES, NYU40_PALETTE, NYUv2MultiTaskDataset

__all__ += ['NYUv2MultiTaskDataset', 'NYU40_CLASSES', 'NYU40_PALETTE']
from .uda import UDADataset

__all__ += ['UDADataset']
from .gta import GTADataset
from .synthia import (SYNTHIA_13_CLASSES, SYNTHIA_16_CLASSES, SYNTHIA_MISSING_CLASSES,
                      SynthiaDataset)

__all__ += ['GTADataset', 'SynthiaDataset', 'SYNTHIA_16_CLASSES', 'SYNTHIA_13_CLASSES',
            'SYNTHIA_MISSING_CLASSES']
from . import samplers  # noqa: F401,E402
from .frame_sequence import *  # noqa: F401,F403,E402
from .foraug import *  # noqa: F401,F403,E402
