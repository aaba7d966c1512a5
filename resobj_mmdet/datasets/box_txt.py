# Copyright (c) resobj-mmdet contributors.
"""Datasets whose boxes are text lines, one label file per image.

What the Aquarium (YOLO txt) and DeepPCB (``x1 y1 x2 y2 type``) readers
share: the root check that names the clone command, the image size read
from the image header, a strict line parser whose errors name the file and
the line, and mmdet's own handling of boxes that leave the image:

- a box with no overlap with the image, or under 1 px wide or high, is
  dropped (:class:`~mmdet.datasets.CocoDataset`'s rule in
  ``parse_data_info``);
- a box that crosses the border is kept as it is; mmdet's ``Resize``
  (``clip_object_border=True``) clips it to the image;
- an image without boxes is kept, and ``filter_cfg=dict(filter_empty_gt=
  True)`` leaves it out of training (mmdet's ``filter_data``).

Both counts are logged once per dataset, so that a user sees what was
changed. Evaluation uses :class:`~mmdet.evaluation.CocoMetric` with
``ann_file=None`` (see :mod:`resobj_mmdet.datasets.bccd`).
"""
import os.path as osp
from typing import Dict, List, Sequence, Tuple

from mmengine.logging import print_log
from PIL import Image

from mmdet.datasets import BaseDetDataset, XMLDataset
from .utils import unmatchable_box

# EXIF orientations that turn the stored image by 90 degrees; mmcv's
# default (cv2) decoder applies the EXIF orientation, so the image mmdet
# sees is then the transposed one.
_TRANSPOSED = (5, 6, 7, 8)


def image_size(path: str) -> Tuple[int, int]:
    """``(width, height)`` of an image as mmdet will load it (EXIF
    orientation applied), read from its header only.

    Raises:
        FileNotFoundError: naming ``path``.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'image {path!r} not found')
    with Image.open(path) as img:
        width, height = img.size
        if img.getexif().get(0x0112, 1) in _TRANSPOSED:
            width, height = height, width
    return width, height


def read_box_lines(path: str, num_fields: int, fields_doc: str,
                   label_field: int, first_label: int, num_classes: int
                   ) -> List[Tuple[int, List[float]]]:
    """Parse a label file strictly.

    Args:
        path (str): The label file.
        num_fields (int): Whitespace-separated numbers per line.
        fields_doc (str): The line format, for the error message
            (e.g. ``'class cx cy w h'``).
        label_field (int): Index of the class id among the fields.
        first_label (int): The class id of the first class (0 or 1).
        num_classes (int): Class ids must be integers in
            ``[first_label, first_label + num_classes)``.

    Returns:
        list[tuple]: ``(0-based label, the other fields)`` per line; empty
        for an empty file (an image without boxes).

    Raises:
        ValueError: naming ``path`` and the 1-based line: a wrong number
            of fields, a field that is not a number, a class id that is
            not an integer or out of range.
    """
    rows = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue  # blank lines (a trailing newline) are no box
            where = f'{path}:{lineno}'
            if len(fields) != num_fields:
                raise ValueError(
                    f'{where}: expected {num_fields} fields '
                    f'({fields_doc}), got {len(fields)}: {line.strip()!r}')
            try:
                values = [float(v) for v in fields]
            except ValueError:
                raise ValueError(f'{where}: fields must be numbers '
                                 f'({fields_doc}), got {line.strip()!r}'
                                 ) from None
            label = values.pop(label_field) - first_label
            if label != int(label) or not 0 <= label < num_classes:
                raise ValueError(
                    f'{where}: class id {fields[label_field]} is not one of '
                    f'the {num_classes} classes (integers {first_label}..'
                    f'{first_label + num_classes - 1})')
            rows.append((int(label), values))
    return rows


class BoxTxtDataset(BaseDetDataset):
    """Base of the datasets with one box text file per image.

    Subclasses list their ``(image, label file)`` pairs in
    :meth:`file_pairs`, turn a line's numbers into a box in
    :meth:`to_box` and set the line format (:attr:`NUM_FIELDS`,
    :attr:`FIELDS_DOC`, :attr:`LABEL_FIELD`, :attr:`FIRST_LABEL`) and
    where the files come from (:attr:`CLONE`, :attr:`ROOT_ENV`).

    Args:
        data_root (str): The dataset's root, as a clone of its public
            repository lays it out.
        **kwargs: :class:`~mmdet.datasets.BaseDetDataset` arguments.
    """

    NUM_FIELDS: int
    FIELDS_DOC: str
    LABEL_FIELD: int  # index of the class id among the fields
    FIRST_LABEL: int = 0  # class id of the first class
    CLONE: str  # the shell command that gets the files
    ROOT_ENV: str  # the environment variable the configs read

    # XMLDataset's filter (filter_empty_gt, min_size on the image): the
    # same rule for any dataset whose data_list has width/height/instances.
    filter_data = XMLDataset.filter_data

    def __init__(self, data_root: str = '', **kwargs) -> None:
        name = type(self).__name__
        if not data_root or not osp.isdir(data_root):
            raise FileNotFoundError(
                f'{name}: `data_root` {data_root!r} is not a directory. Get '
                f'the dataset there: `{self.CLONE}`, or point `data_root` at '
                f'a copy (the configs read the environment variable '
                f'{self.ROOT_ENV})')
        self.box_counts: Dict[str, int] = {}
        super().__init__(data_root=data_root, **kwargs)

    def file_pairs(self) -> List[Tuple[str, str, str]]:
        """``(img_id, image path, label path)`` of every image."""
        raise NotImplementedError

    def to_box(self, values: List[float], width: int,
               height: int) -> Sequence[float]:
        """A line's numbers other than the class id as ``(x1, y1, x2,
        y2)`` in pixels of the ``width`` x ``height`` image."""
        raise NotImplementedError

    def load_data_list(self) -> List[dict]:
        """Read every pair of :meth:`file_pairs` (see the module
        docstring for the boxes that are dropped or clipped)."""
        num_classes = len(self.metainfo['classes'])
        counts = dict(images=0, boxes=0, crossing_border=0, dropped=0,
                      empty_images=0)
        data_list = []
        for img_id, img_path, label_path in self.file_pairs():
            width, height = image_size(img_path)
            instances = []
            for label, values in read_box_lines(
                    label_path, self.NUM_FIELDS, self.FIELDS_DOC,
                    self.LABEL_FIELD, self.FIRST_LABEL, num_classes):
                x1, y1, x2, y2 = self.to_box(values, width, height)
                counts['boxes'] += 1
                if unmatchable_box((x1, y1, x2, y2), width, height):
                    counts['dropped'] += 1
                    continue
                if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
                    counts['crossing_border'] += 1
                instances.append(
                    dict(bbox=[x1, y1, x2, y2], bbox_label=label,
                         ignore_flag=0))
            counts['images'] += 1
            counts['empty_images'] += not instances
            data_list.append(
                dict(img_path=img_path, img_id=img_id, width=width,
                     height=height, instances=instances))
        self.box_counts = counts
        print_log(
            f'{type(self).__name__} ({self.ann_file}): {counts["images"]} '
            f'images, {counts["boxes"]} boxes; {counts["dropped"]} dropped '
            '(no overlap with the image, or under 1 px), '
            f'{counts["crossing_border"]} crossing the border (clipped by '
            f'Resize), {counts["empty_images"]} images without boxes',
            logger='current')
        return data_list
