# Copyright (c) resobj-mmdet contributors.
"""DeepPCB: defects in binarised scans of printed circuit boards.

The public repository ``tangsanli5201/DeepPCB`` (its ``PCBData/``): 640x640
grayscale scans in ``groupN/N/<id>_test.jpg`` (the defect-free template
``<id>_temp.jpg`` beside each is not used), their defects in
``groupN/N_not/<id>.txt``, one line ``x1 y1 x2 y2 type`` per box in pixels,
type 1..6 = open, short, mousebite, spur, copper, pin-hole. The official
``trainval.txt`` lists the 1000 training pairs as ``groupN/N/<id>.jpg
groupN/N_not/<id>.txt`` (the image named without its ``_test`` suffix).
Every box is small (median 34 px), about 3 % of an image is defect and the
six classes are balanced.

The official test split is held out; this reader makes a fixed
validation split out of ``trainval.txt``: with its lines sorted, every
fifth one (positions 4, 9, 14, ... counting from 0) is ``val`` (200
images), the other 800 are ``train``: every group is in both, and the rule
needs no random state. ``split='trainval'`` reads all 1000.
"""
import os.path as osp
from typing import List, Sequence, Tuple

from mmdet.registry import DATASETS
from .box_txt import BoxTxtDataset

CLASSES = ('open', 'short', 'mousebite', 'spur', 'copper', 'pin-hole')
CLONE = ('git clone https://github.com/tangsanli5201/DeepPCB && ln -s '
         '$PWD/DeepPCB/PCBData data/deeppcb')
SPLITS = ('train', 'val', 'trainval')
VAL_EVERY = 5


def split_lines(lines: List[str], split: str) -> List[str]:
    """The lines of ``split`` among ``trainval.txt``'s (see the module
    docstring): sorted, ``val`` every fifth from position 4."""
    lines = sorted(lines)
    if split == 'trainval':
        return lines
    val = split == 'val'
    return [line for i, line in enumerate(lines)
            if (i % VAL_EVERY == VAL_EVERY - 1) == val]


@DATASETS.register_module()
class DeepPCBDataset(BoxTxtDataset):
    """DeepPCB, the repository's ``PCBData`` layout (see the module
    docstring).

    Args:
        data_root (str): ``PCBData/`` of a clone (the directory holding
            ``trainval.txt`` and the ``groupN`` directories).
        ann_file (str): The pair list, relative to ``data_root``.
            Defaults to ``'trainval.txt'``.
        split (str): ``'train'`` (800 images), ``'val'`` (200) or
            ``'trainval'`` (all). Defaults to ``'train'``.
        **kwargs: :class:`~mmdet.datasets.BaseDetDataset` arguments.
    """

    METAINFO = dict(
        classes=CLASSES,
        palette=[(230, 40, 40), (0, 120, 255), (255, 140, 0), (0, 170, 120),
                 (200, 0, 200), (120, 80, 0)])
    NUM_FIELDS = 5
    FIELDS_DOC = 'x1 y1 x2 y2 type, pixels, type 1..6'
    LABEL_FIELD = 4
    FIRST_LABEL = 1
    CLONE = CLONE
    ROOT_ENV = 'DEEPPCB_ROOT'

    def __init__(self, ann_file: str = 'trainval.txt', split: str = 'train',
                 **kwargs) -> None:
        if split not in SPLITS:
            raise ValueError(f'DeepPCBDataset: `split` must be one of '
                             f'{SPLITS}, got {split!r}')
        self.split = split
        super().__init__(ann_file=ann_file, **kwargs)

    def file_pairs(self) -> List[Tuple[str, str, str]]:
        """The split's pairs of ``trainval.txt``; a missing list, image or
        label file raises naming it (and the list's line)."""
        name = type(self).__name__
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'{name}: pair list `ann_file` {self.ann_file!r} not found; '
                f'is `data_root` {self.data_root!r} the PCBData directory of '
                'a DeepPCB clone?')
        with open(self.ann_file) as f:
            lines = [(line.strip(), i) for i, line in enumerate(f, 1)
                     if line.strip()]
        for line, lineno in lines:  # every line, whichever split it is in
            if len(line.split()) != 2:
                raise ValueError(
                    f'{name}: {self.ann_file}:{lineno}: expected '
                    f'`<image>.jpg <labels>.txt`, got {line!r}')
        where = dict(lines)
        pairs = []
        for line in split_lines(list(where), self.split):
            image, label = line.split()
            stem = osp.splitext(image)[0]
            img_path = osp.join(self.data_root, stem + '_test.jpg')
            label_path = osp.join(self.data_root, label)
            for what, path in (('image', img_path), ('label file',
                                                      label_path)):
                if not osp.isfile(path):
                    raise FileNotFoundError(
                        f'{name}: {what} {path!r} (listed in '
                        f'{self.ann_file}:{where[line]}) not found')
            pairs.append((osp.basename(stem), img_path, label_path))
        return pairs

    def to_box(self, values: List[float], width: int,
               height: int) -> Sequence[float]:
        """The file's pixel corners as they are."""
        return values
