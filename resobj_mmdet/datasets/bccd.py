# Copyright (c) resobj-mmdet contributors.
"""BCCD: blood-cell detection in light-microscope images (Pascal VOC files).

The public BCCD set (https://github.com/Shenggan/BCCD_Dataset, MIT): 364
640x480 images in the repository, of which the ``train`` (205) and ``val``
(87) image sets are used here, three classes with a strong imbalance (RBC
about 85 % of the boxes, WBC and Platelets about 7.5 % each), about 14
boxes an image. The files are read as they are in a clone of that
repository: ``BCCD/ImageSets/Main/{train,val}.txt``,
``BCCD/Annotations/<id>.xml`` and ``BCCD/JPEGImages/<id>.jpg``.

It is mmdet's :class:`~mmdet.datasets.XMLDataset` (VOC's reader, with its
1-based coordinates made 0-based) with BCCD's metainfo and two additions:

- boxes that no detector can match (zero width or height, or no overlap
  with the image; the repository has two, points at one pixel) are dropped
  with :class:`~mmdet.datasets.CocoDataset`'s own rule (``w < 1 or h < 1``,
  or no intersection with the image), so training and evaluation never see
  them;
- a missing ``data_root``, image set or annotation file raises
  ``FileNotFoundError`` naming the path (and, for the root, the clone
  command), and a class name outside BCCD's three raises ``ValueError``
  naming the file, instead of mmdet's silent skip.

Evaluation uses :class:`~mmdet.evaluation.CocoMetric` with ``ann_file=None``:
the metric builds its COCO ground truth from these parsed instances (the
test pipeline packs them, ``meta_keys`` with ``'instances'``), so training
and evaluation read the same boxes from the same files and no converted
json has to be kept in step with the XML.
"""
import os.path as osp
from typing import List, Union

from mmdet.datasets import XMLDataset
from mmdet.registry import DATASETS
from .utils import unmatchable_box

CLASSES = ('RBC', 'WBC', 'Platelets')
CLONE = 'git clone https://github.com/Shenggan/BCCD_Dataset'


@DATASETS.register_module()
class BCCDDataset(XMLDataset):
    """BCCD blood cells, Pascal VOC layout (see the module docstring).

    Args:
        data_root (str): The clone of ``Shenggan/BCCD_Dataset`` (the
            directory holding ``BCCD/``).
        ann_file (str): Image set, relative to ``data_root``, e.g.
            ``'BCCD/ImageSets/Main/train.txt'``.
        data_prefix (dict): ``dict(sub_data_root='BCCD/')``: where
            ``Annotations/`` and ``JPEGImages/`` are, relative to
            ``data_root``.
        **kwargs: :class:`~mmdet.datasets.XMLDataset` arguments.
    """

    METAINFO = dict(
        classes=CLASSES,
        # RBC red, WBC blue, Platelets violet.
        palette=[(220, 20, 60), (0, 60, 230), (150, 0, 200)])

    def __init__(self, data_root: str = '', **kwargs) -> None:
        if not data_root or not osp.isdir(data_root):
            raise FileNotFoundError(
                f'BCCDDataset: `data_root` {data_root!r} is not a directory. '
                f'Clone the dataset there: `{CLONE} {data_root or "<dir>"}`, '
                'or point `data_root` at a clone (the configs of '
                'configs/bccd/ read the environment variable BCCD_ROOT)')
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read the image set, naming a missing file."""
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'BCCDDataset: image set `ann_file` {self.ann_file!r} not '
                f'found; is `data_root` {self.data_root!r} a clone of '
                'Shenggan/BCCD_Dataset?')
        return super().load_data_list()

    def parse_data_info(self, img_info: dict) -> Union[dict, List[dict]]:
        """VOC's parse, then CocoDataset's drop of unmatchable boxes.

        Args:
            img_info (dict): ``img_id``, ``file_name`` and ``xml_path``.

        Returns:
            dict: ``img_path``, ``img_id``, ``height``, ``width`` and
            ``instances`` (``bbox`` x1, y1, x2, y2 0-based, ``bbox_label``,
            ``ignore_flag``).
        """
        xml_path = img_info['xml_path']
        if not osp.isfile(xml_path):
            raise FileNotFoundError(
                f'BCCDDataset: annotation file {xml_path!r} (listed in '
                f'{self.ann_file!r}) not found')
        self._xml_path = xml_path  # for the error of _parse_instance_info
        data_info = super().parse_data_info(img_info)
        width, height = data_info['width'], data_info['height']
        data_info['instances'] = [
            inst for inst in data_info['instances']
            if not unmatchable_box(inst['bbox'], width, height)
        ]
        return data_info

    def _parse_instance_info(self, raw_ann_info, minus_one: bool = True
                             ) -> List[dict]:
        """XMLDataset's parse; a class outside BCCD's raises.

        A name among BCCD's classes but not in this dataset's ``classes``
        (a config that keeps a subset) is skipped, as mmdet does.
        """
        for i, obj in enumerate(raw_ann_info.findall('object')):
            name = obj.findtext('name')
            if name not in CLASSES and name not in self._metainfo['classes']:
                raise ValueError(
                    f'BCCDDataset: {self._xml_path}: object {i} has class '
                    f'{name!r}; expected one of {CLASSES}')
        return super()._parse_instance_info(raw_ann_info, minus_one)
