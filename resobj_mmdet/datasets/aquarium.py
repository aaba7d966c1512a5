# Copyright (c) resobj-mmdet contributors.
"""Aquarium: fish and other animals in photographs of two public aquariums.

Roboflow's "Aquarium Combined" (CC BY 4.0) in its YOLO export, as the
public repository ``sumit2011/underwater-object-detection`` keeps it under
``dataset/aquarium_pretrain``: ``data.yaml`` and, per split,
``<split>/images/<name>.jpg`` with ``<split>/labels/<name>.txt``, one line
``class cx cy w h`` per box (class id 0..6 in ``data.yaml``'s order, the
box centre and size normalised to the image). Seven classes with a 25:1
frequency skew, 42 % of the boxes under 32x32 px at long side 512, about
18 % of an image foreground: COCO's kind of imbalance on 448 training
images (``train``) and 127 validation images (``valid``).

Every image must have its label file and every label file its image;
malformed lines raise naming the file and the line (see
:mod:`resobj_mmdet.datasets.box_txt` for boxes that leave the image and
the image without boxes).
"""
import os
import os.path as osp
from typing import List, Sequence, Tuple

from mmdet.registry import DATASETS
from .box_txt import BoxTxtDataset

CLASSES = ('fish', 'jellyfish', 'penguin', 'puffin', 'shark', 'starfish',
           'stingray')
CLONE = ('git clone https://github.com/sumit2011/underwater-object-detection'
         ' && ln -s $PWD/underwater-object-detection/dataset/'
         'aquarium_pretrain data/aquarium')
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')


@DATASETS.register_module()
class AquariumDataset(BoxTxtDataset):
    """Aquarium, YOLO txt layout (see the module docstring).

    Args:
        data_root (str): The directory holding ``data.yaml``, ``train/``
            and ``valid/`` (``dataset/aquarium_pretrain`` of the clone).
        ann_file (str): The split's label directory, relative to
            ``data_root``, e.g. ``'train/labels/'``.
        data_prefix (dict): ``dict(img='train/images/')``: the split's
            image directory.
        **kwargs: :class:`~mmdet.datasets.BaseDetDataset` arguments.
    """

    METAINFO = dict(
        classes=CLASSES,
        palette=[(0, 120, 255), (200, 0, 200), (30, 30, 30), (255, 140, 0),
                 (90, 90, 200), (230, 40, 40), (0, 170, 120)])
    NUM_FIELDS = 5
    FIELDS_DOC = 'class cx cy w h, normalised'
    LABEL_FIELD = 0
    CLONE = CLONE
    ROOT_ENV = 'AQUARIUM_ROOT'

    def file_pairs(self) -> List[Tuple[str, str, str]]:
        """Images and label files matched by name; either one alone is an
        error naming it."""
        name = type(self).__name__
        img_dir, label_dir = self.data_prefix['img'], self.ann_file
        for what, path in (('label directory `ann_file`', label_dir),
                           ("image directory `data_prefix['img']`",
                            img_dir)):
            if not osp.isdir(path):
                raise FileNotFoundError(
                    f'{name}: {what} {path!r} not found; is `data_root` '
                    f'{self.data_root!r} a copy of Aquarium\'s YOLO export '
                    '(train/images, train/labels, ...)?')
        images = {
            osp.splitext(f)[0]: f
            for f in os.listdir(img_dir)
            if f.lower().endswith(IMG_EXTENSIONS)
        }
        labels = {
            osp.splitext(f)[0]
            for f in os.listdir(label_dir) if f.endswith('.txt')
        }
        for stem in sorted(labels - images.keys()):
            raise FileNotFoundError(
                f'{name}: label file {osp.join(label_dir, stem + ".txt")!r} '
                f'has no image in {img_dir!r}')
        for stem in sorted(images.keys() - labels):
            raise FileNotFoundError(
                f'{name}: image {osp.join(img_dir, images[stem])!r} has no '
                f'label file {osp.join(label_dir, stem + ".txt")!r} (an '
                'image without boxes has an empty one)')
        return [(stem, osp.join(img_dir, images[stem]),
                 osp.join(label_dir, stem + '.txt'))
                for stem in sorted(images)]

    def to_box(self, values: List[float], width: int,
               height: int) -> Sequence[float]:
        """YOLO's normalised centre and size as pixel corners."""
        cx, cy, w, h = values
        return ((cx - w / 2) * width, (cy - h / 2) * height,
                (cx + w / 2) * width, (cy + h / 2) * height)
