"""Aquarium (YOLO txt labels) on a few fixture files."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from helpers import REPO
from resobj_mmdet.datasets import AquariumDataset

BASE = osp.join(REPO, 'configs/aquarium/_base_/aquarium.py')


def write_aquarium(root, files=None):
    """A copy of the YOLO export's layout: train/ and valid/ with images
    and labels (``files``: split -> {name: (w, h, label text)})."""
    files = files or dict(
        train={
            # a 100x50 image: a box in the middle, one crossing the right
            # border, one wholly outside (dropped), a zero-width one
            # (dropped)
            'a': (100, 50, '0 0.5 0.5 0.2 0.4\n6 0.95 0.5 0.2 0.2\n'
                  '3 1.5 0.5 0.1 0.1\n2 0.3 0.3 0.0 0.2\n'),
            'b': (60, 80, '1 0.25 0.25 0.5 0.5\n\n'),  # trailing blank line
            'empty': (40, 40, ''),  # an image without boxes
        },
        valid={'c': (50, 50, '5 0.5 0.5 0.4 0.4\n')})
    for split, items in files.items():
        os.makedirs(osp.join(root, split, 'images'), exist_ok=True)
        os.makedirs(osp.join(root, split, 'labels'), exist_ok=True)
        for name, (w, h, text) in items.items():
            cv2.imwrite(osp.join(root, split, 'images', name + '.jpg'),
                        np.zeros((h, w, 3), np.uint8))
            with open(osp.join(root, split, 'labels', name + '.txt'),
                      'w') as f:
                f.write(text)
    return root


def _dataset(root, split='train', **kwargs):
    return AquariumDataset(
        data_root=root, ann_file=f'{split}/labels/',
        data_prefix=dict(img=f'{split}/images/'),
        test_mode=split != 'train', pipeline=[], **kwargs)


def test_reads_yolo_labels_as_pixel_boxes(tmp_path):
    root = write_aquarium(str(tmp_path / 'aquarium'))
    ds = _dataset(root)
    assert ds.metainfo['classes'][0] == 'fish'
    assert len(ds.metainfo['classes']) == 7
    assert len(ds) == 3  # test_mode=False but no filter_cfg: empty kept
    info = ds.get_data_info(0)
    assert info['img_id'] == 'a'
    assert info['img_path'] == osp.join(root, 'train', 'images', 'a.jpg')
    assert (info['width'], info['height']) == (100, 50)
    boxes = [(i['bbox'], i['bbox_label']) for i in info['instances']]
    # cx 0.5, w 0.2 of 100 px -> 40..60; cy 0.5, h 0.4 of 50 -> 15..35.
    # The border-crossing box is kept as it is (Resize clips it); the box
    # outside the image and the zero-width one are dropped (CocoDataset).
    assert boxes == [(pytest.approx([40, 15, 60, 35]), 0),
                     (pytest.approx([85, 20, 105, 30]), 6)]
    assert ds.get_data_info(1)['instances'][0]['bbox'] == \
        pytest.approx([0, 0, 30, 40])
    assert ds.get_data_info(2)['instances'] == []
    assert ds.box_counts == dict(images=3, boxes=5, crossing_border=1,
                                 dropped=2, empty_images=1)


def test_empty_image_is_filtered_from_training_as_mmdet_does(tmp_path):
    root = write_aquarium(str(tmp_path / 'aquarium'))
    ds = _dataset(root, filter_cfg=dict(filter_empty_gt=True, min_size=32))
    assert [ds.get_data_info(i)['img_id'] for i in range(len(ds))] == \
        ['a', 'b']
    val = _dataset(root, 'valid')
    assert len(val) == 1 and val.get_data_info(0)['instances'][0][
        'bbox_label'] == 5


@pytest.mark.parametrize('line, message', [
    ('0 0.5 0.5 0.2', r'a\.txt:2: expected 5 fields \(class cx cy w h'),
    ('0 0.5 0.5 0.2 0.2 1', r'a\.txt:2: expected 5 fields'),
    ('fish 0.5 0.5 0.2 0.2', r'a\.txt:2: fields must be numbers'),
    ('7 0.5 0.5 0.2 0.2', r'a\.txt:2: class id 7 is not one of the 7 '
     r'classes \(integers 0\.\.6\)'),
    ('-1 0.5 0.5 0.2 0.2', r'a\.txt:2: class id -1'),
    ('1.5 0.5 0.5 0.2 0.2', r'a\.txt:2: class id 1\.5'),
])
def test_bad_label_line_names_file_and_line(tmp_path, line, message):
    root = write_aquarium(str(tmp_path / 'aquarium'))
    label = osp.join(root, 'train', 'labels', 'a.txt')
    with open(label, 'w') as f:
        f.write('0 0.5 0.5 0.2 0.4\n' + line + '\n')
    with pytest.raises(ValueError, match=message):
        _dataset(root)
    # The file is read, never written.
    with open(label) as f:
        assert f.read() == '0 0.5 0.5 0.2 0.4\n' + line + '\n'


def test_unpaired_files_are_named(tmp_path):
    root = write_aquarium(str(tmp_path / 'aquarium'))
    os.remove(osp.join(root, 'train', 'images', 'b.jpg'))
    with pytest.raises(FileNotFoundError,
                       match=r"label file .*b\.txt' has no image"):
        _dataset(root)
    root = write_aquarium(str(tmp_path / 'aquarium2'))
    os.remove(osp.join(root, 'train', 'labels', 'b.txt'))
    with pytest.raises(FileNotFoundError,
                       match=r"image .*b\.jpg' has no label file"):
        _dataset(root)


def test_missing_root_and_split_name_the_path(tmp_path):
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError) as err:
        _dataset(missing)
    assert missing in str(err.value)
    assert 'git clone https://github.com/sumit2011/underwater-object-' \
        'detection' in str(err.value)
    assert 'AQUARIUM_ROOT' in str(err.value)
    root = write_aquarium(str(tmp_path / 'aquarium'))
    with pytest.raises(FileNotFoundError, match=r"test/labels/'? not found"):
        _dataset(root, 'test')


def test_base_config_reads_aquarium_root_from_the_environment(monkeypatch):
    monkeypatch.delenv('AQUARIUM_ROOT', raising=False)
    cfg = Config.fromfile(BASE)
    assert cfg.train_dataloader.dataset.data_root == 'data/aquarium/'
    monkeypatch.setenv('AQUARIUM_ROOT', '/some/copy/')
    cfg = Config.fromfile(BASE)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[key].dataset.data_root == '/some/copy/'
    assert cfg.val_dataloader.dataset.ann_file == 'valid/labels/'
    assert cfg.val_evaluator.ann_file is None


def test_config_pipeline_loads_and_resizes(tmp_path):
    from mmdet.registry import TRANSFORMS
    from mmengine.dataset import Compose
    root = write_aquarium(str(tmp_path / 'aquarium'))
    cfg = Config.fromfile(BASE)
    ds = _dataset(root)
    data = Compose([TRANSFORMS.build(t) for t in cfg.train_pipeline])(
        ds.get_data_info(0))
    sample = data['data_samples']
    # 100x50 at (512, 384) keep-ratio: the long side to 512.
    assert sample.img_shape == (256, 512)
    boxes = sample.gt_instances.bboxes.tensor
    assert len(boxes) == 2 and float(boxes[:, 2].max()) <= 512
