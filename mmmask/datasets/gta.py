"""GTA5 ("Playing for Data", Richter et al., ECCV 2016) as a source domain for GTA5 -> Cityscapes
adaptation: 24,966 synthetic 1914x1052 frames labelled with the 19 Cityscapes classes.

Labels must first be converted to Cityscapes trainIds with ``tools/dataset_converters/gta.py``
(writes ``labels/<id>_labelTrainIds.png`` and the rare-class-sampling statistics)::

    data/gta/images/00001.png
    data/gta/labels/00001_labelTrainIds.png
"""
from mmseg.datasets import BaseSegDataset, CityscapesDataset

from ..registry import DATASETS


class CityscapesTrainIdDataset(BaseSegDataset):
    """A synthetic source domain converted to Cityscapes' 19-class trainIds (255 = ignore):
    ``<name>.png`` images, ``<name>_labelTrainIds.png`` labels, no ``ann_file`` split."""
    METAINFO = dict(classes=CityscapesDataset.METAINFO['classes'],
                    palette=CityscapesDataset.METAINFO['palette'])

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '_labelTrainIds.png',
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)


@DATASETS.register_module()
class GTADataset(CityscapesTrainIdDataset):
    """GTA5 with Cityscapes' 19 classes (trainIds, 255 = ignore). The whole release is the
    training set (no ``ann_file`` split)."""
