"""SYNTHIA-RAND-CITYSCAPES (Ros et al., CVPR 2016) as a source domain for SYNTHIA -> Cityscapes
adaptation: 9,400 synthetic 1280x760 frames.

Labels must first be converted to Cityscapes trainIds with
``tools/dataset_converters/synthia.py``::

    data/synthia/RGB/0000000.png
    data/synthia/GT/LABELS/0000000_labelTrainIds.png

SYNTHIA shares 16 of the 19 Cityscapes classes; terrain, truck and train never occur in its
labels. The dataset keeps the 19 Cityscapes classes so that the model, pseudo-labels and the
Cityscapes evaluation use one label space; SYNTHIA -> Cityscapes results are reported as mIoU16
(the 16 shared classes) and mIoU13 (also without wall, fence and pole), see
:data:`SYNTHIA_16_CLASSES`, :data:`SYNTHIA_13_CLASSES` and ``mmmask.ClassSubsetIoUMetric``.
"""
from mmseg.datasets import CityscapesDataset

from ..registry import DATASETS
from .gta import CityscapesTrainIdDataset

CITYSCAPES_CLASSES = tuple(CityscapesDataset.METAINFO['classes'])
#: Cityscapes classes without SYNTHIA labels.
SYNTHIA_MISSING_CLASSES = ('terrain', 'truck', 'train')
#: The 16 classes of the SYNTHIA -> Cityscapes mIoU16.
SYNTHIA_16_CLASSES = tuple(c for c in CITYSCAPES_CLASSES if c not in SYNTHIA_MISSING_CLASSES)
#: The 13 classes of mIoU13 (the 16 without wall, fence and pole).
SYNTHIA_13_CLASSES = tuple(c for c in SYNTHIA_16_CLASSES if c not in ('wall', 'fence', 'pole'))


@DATASETS.register_module()
class SynthiaDataset(CityscapesTrainIdDataset):
    """SYNTHIA-RAND-CITYSCAPES in Cityscapes' 19-class trainId space (255 = ignore)."""
