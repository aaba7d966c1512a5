"""DeepPCB (x1 y1 x2 y2 type lines, trainval.txt pairs) on fixture files."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from helpers import REPO
from resobj_mmdet.datasets import DeepPCBDataset
from resobj_mmdet.datasets.deeppcb import split_lines

BASE = osp.join(REPO, 'configs/deeppcb/_base_/deeppcb.py')


def write_pcbdata(root, num=10, labels=None, size=64):
    """A copy of PCBData's layout: group00001/00001/<id>_test.jpg (and its
    _temp.jpg, ``size`` square), group00001/00001_not/<id>.txt,
    trainval.txt."""
    labels = labels or {}
    os.makedirs(osp.join(root, 'group00001', '00001'), exist_ok=True)
    os.makedirs(osp.join(root, 'group00001', '00001_not'), exist_ok=True)
    lines = []
    for i in range(num):
        stem = f'00001{i:03d}'
        for suffix in ('_test', '_temp'):
            cv2.imwrite(
                osp.join(root, 'group00001', '00001', stem + suffix + '.jpg'),
                np.zeros((size, size), np.uint8))
        with open(osp.join(root, 'group00001', '00001_not', stem + '.txt'),
                  'w') as f:
            f.write(labels.get(i, f'{i} 2 {i + 10} 12 {i % 6 + 1}\n'))
        lines.append(f'group00001/00001/{stem}.jpg '
                     f'group00001/00001_not/{stem}.txt')
    with open(osp.join(root, 'trainval.txt'), 'w') as f:
        f.write('\n'.join(reversed(lines)))  # order does not matter
    return root


def _dataset(root, split='train', **kwargs):
    return DeepPCBDataset(data_root=root, split=split,
                          test_mode=split != 'train', pipeline=[], **kwargs)


def test_fixed_split_every_fifth_sorted_line_is_val():
    lines = [f'l{i:02d}' for i in range(10)]
    assert split_lines(lines[::-1], 'val') == ['l04', 'l09']
    assert split_lines(lines, 'train') == [
        f'l{i:02d}' for i in range(10) if i % 5 != 4]
    assert split_lines(lines, 'trainval') == lines


def test_reads_pairs_and_pixel_boxes(tmp_path):
    root = write_pcbdata(str(tmp_path / 'PCBData'))
    train, val = _dataset(root), _dataset(root, 'val')
    assert len(train) == 8 and len(val) == 2
    info = val.get_data_info(0)
    assert info['img_id'] == '00001004'
    assert info['img_path'] == osp.join(root, 'group00001', '00001',
                                        '00001004_test.jpg')
    assert (info['width'], info['height']) == (64, 64)
    # "4 2 14 12 5": type 5 (copper) is label 4.
    assert [(i['bbox'], i['bbox_label']) for i in info['instances']] == \
        [([4, 2, 14, 12], 4)]
    assert train.metainfo['classes'] == ('open', 'short', 'mousebite',
                                         'spur', 'copper', 'pin-hole')


def test_boxes_outside_and_degenerate_and_empty_file(tmp_path):
    root = write_pcbdata(str(tmp_path / 'PCBData'), labels={
        0: '60 2 70 12 1\n80 80 90 90 2\n5 5 5.5 20 3\n',
        1: ''})
    ds = _dataset(root, 'trainval')
    assert [i['bbox'] for i in ds.get_data_info(0)['instances']] == \
        [[60, 2, 70, 12]]  # crosses the border: kept, Resize clips it
    assert ds.get_data_info(1)['instances'] == []
    assert ds.box_counts['dropped'] == 2
    assert ds.box_counts['crossing_border'] == 1
    assert ds.box_counts['empty_images'] == 1
    ds = _dataset(root, filter_cfg=dict(filter_empty_gt=True))
    assert '00001001' not in [ds.get_data_info(i)['img_id']
                              for i in range(len(ds))]


@pytest.mark.parametrize('line, message', [
    ('1 2 3 4', r'00001000\.txt:1: expected 5 fields \(x1 y1 x2 y2 type'),
    ('1 2 3 4 x', r'00001000\.txt:1: fields must be numbers'),
    ('1 2 30 40 0', r'00001000\.txt:1: class id 0 is not one of the 6 '
     r'classes \(integers 1\.\.6\)'),
    ('1 2 30 40 7', r'class id 7'),
])
def test_bad_label_line_names_file_and_line(tmp_path, line, message):
    root = write_pcbdata(str(tmp_path / 'PCBData'), labels={0: line + '\n'})
    with pytest.raises(ValueError, match=message):
        _dataset(root)


def test_missing_files_are_named_with_their_list_line(tmp_path):
    root = write_pcbdata(str(tmp_path / 'PCBData'))
    os.remove(osp.join(root, 'group00001', '00001', '00001003_test.jpg'))
    # trainval.txt is written in reverse: 00001003 is on line 7.
    with pytest.raises(FileNotFoundError,
                       match=r"image .*00001003_test\.jpg' \(listed in "
                       r'.*trainval\.txt:7\) not found'):
        _dataset(root)
    root = write_pcbdata(str(tmp_path / 'PCBData2'))
    os.remove(osp.join(root, 'group00001', '00001_not', '00001002.txt'))
    with pytest.raises(FileNotFoundError, match=r'label file .*00001002\.txt'):
        _dataset(root)
    with open(osp.join(root, 'trainval.txt'), 'a') as f:
        f.write('\nonly_one_field.jpg\n')
    with pytest.raises(ValueError, match=r'trainval\.txt:11: expected'):
        _dataset(root)


def test_missing_root_list_and_bad_split(tmp_path):
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError) as err:
        _dataset(missing)
    assert 'git clone https://github.com/tangsanli5201/DeepPCB' in \
        str(err.value)
    assert 'DEEPPCB_ROOT' in str(err.value) and missing in str(err.value)
    os.makedirs(tmp_path / 'empty')
    with pytest.raises(FileNotFoundError, match=r'trainval\.txt.* not found'):
        _dataset(str(tmp_path / 'empty'))
    with pytest.raises(ValueError, match=r"`split` must be one of .*'test'"):
        _dataset(str(tmp_path / 'empty'), 'test')


def test_base_config_reads_deeppcb_root_from_the_environment(monkeypatch):
    monkeypatch.delenv('DEEPPCB_ROOT', raising=False)
    cfg = Config.fromfile(BASE)
    assert cfg.train_dataloader.dataset.data_root == 'data/deeppcb/'
    monkeypatch.setenv('DEEPPCB_ROOT', '/some/PCBData/')
    cfg = Config.fromfile(BASE)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[key].dataset.data_root == '/some/PCBData/'
    assert cfg.train_dataloader.dataset.split == 'train'
    assert cfg.val_dataloader.dataset.split == 'val'


def test_config_trains_on_defect_crops_and_tests_whole_scans(tmp_path):
    """The configs' native scale: 320x320 crops that hold a defect in
    training, the whole 640x640 scan in testing."""
    from mmdet.registry import TRANSFORMS
    from mmengine.dataset import Compose
    # One 20x10 defect per scan, at a different place in each.
    root = write_pcbdata(str(tmp_path / 'PCBData'), size=640, labels={
        i: f'{40 + 50 * i} {500 - 40 * i} {60 + 50 * i} {510 - 40 * i} 1\n'
        for i in range(10)})
    cfg = Config.fromfile(osp.join(
        REPO, 'configs/deeppcb/retinanet_mobilenetv2_fpn_crop320-12e_deeppcb.py'))
    train = Compose([TRANSFORMS.build(t) for t in cfg.train_pipeline])
    test = Compose([TRANSFORMS.build(t) for t in cfg.test_pipeline])
    ds = _dataset(root)
    np.random.seed(0)
    kept = refused = 0
    for i in range(len(ds)):
        for _ in range(20):
            data = train(ds.get_data_info(i))
            if data is None:
                # A crop without its defect is refused (mmdet's dataset
                # then draws another sample).
                refused += 1
                continue
            kept += 1
            sample = data['data_samples']
            assert sample.img_shape == (320, 320)
            boxes = sample.gt_instances.bboxes.tensor
            assert len(boxes) == 1
            assert float(boxes.min()) >= 0 and float(boxes.max()) <= 320
            # Native scale: the 20x10 defect at most clipped, never resized.
            w, h = (boxes[0, 2:] - boxes[0, :2]).tolist()
            assert 0 < min(w, h) <= 10 and max(w, h) <= 20
    assert kept and refused
    sample = test(_dataset(root, 'val').get_data_info(0))['data_samples']
    assert sample.img_shape == sample.ori_shape == (640, 640)
    assert sample.scale_factor == (1.0, 1.0)
