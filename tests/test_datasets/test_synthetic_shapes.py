import json
import os
import os.path as osp

import numpy as np
import pytest

from resobj_mmdet.datasets import CLASSES, ensure_shapes, generate_shapes
from resobj_mmdet.datasets.synthetic_shapes import make_image


def test_generated_content(tiny_shapes):
    for split, count in (('train', 16), ('val', 8)):
        with open(osp.join(tiny_shapes, 'annotations', f'{split}.json')) as f:
            coco = json.load(f)
        assert len(coco['images']) == count
        # pycocotools 2.0.10's loadRes (evaluation) needs 'info'
        assert coco['info']['split'] == split
        assert [c['name'] for c in coco['categories']] == list(CLASSES)
        assert all(osp.isfile(osp.join(tiny_shapes, split, im['file_name']))
                   for im in coco['images'])
        for ann in coco['annotations']:
            x, y, w, h = ann['bbox']
            assert w > 0 and h > 0 and x >= 0 and y >= 0
            assert x + w <= 256.01 and y + h <= 256.01


def test_dataset_properties_over_many_images():
    rng_images = [make_image(np.random.RandomState(i), 256) for i in range(300)]
    anns = [a for _, img_anns in rng_images for a in img_anns]
    assert any(not img_anns for _, img_anns in rng_images)  # empty images
    assert any(a['iscrowd'] for a in anns)  # crowd regions
    sizes = [max(a['bbox'][2:]) for a in anns if not a['iscrowd']]
    assert min(sizes) < 12 and max(sizes) > 64  # small and large objects
    assert {a['category_id'] for a in anns} == set(range(len(CLASSES)))


def test_deterministic(tmp_path):
    generate_shapes(str(tmp_path / 'a'), dict(val=3))
    generate_shapes(str(tmp_path / 'b'), dict(val=3))
    for name in ('annotations/val.json', 'val/000002.png'):
        assert (tmp_path / 'a' / name).read_bytes() == \
            (tmp_path / 'b' / name).read_bytes()


def test_refuses_foreign_directory(tmp_path):
    root = tmp_path / 'mine'
    root.mkdir()
    (root / 'precious.txt').write_text('keep me')
    with pytest.raises(RuntimeError, match='data_root'):
        ensure_shapes(str(root), splits=dict(val=1))
    assert (root / 'precious.txt').read_text() == 'keep me'


def test_refuses_mismatched_copy(tmp_path):
    root = str(tmp_path / 'shapes')
    ensure_shapes(root, splits=dict(val=2))
    ensure_shapes(root, splits=dict(val=2))  # reused
    with pytest.raises(RuntimeError, match='generated with'):
        ensure_shapes(root, splits=dict(val=3))
    assert not [p for p in os.listdir(tmp_path) if p.startswith('.ShapesDataset')]


def test_dataset_class_loads(tiny_shapes):
    from mmdet.registry import DATASETS
    ds = DATASETS.build(
        dict(
            type='ShapesDataset',
            data_root=tiny_shapes,
            generate=dict(splits=dict(train=16, val=8)),
            ann_file='annotations/val.json',
            data_prefix=dict(img='val/'),
            test_mode=True,
            pipeline=[]))
    assert len(ds) == 8
    assert ds.metainfo['classes'] == CLASSES


def test_dropped_annotations_are_logged(tmp_path):
    """mmdet's CocoDataset drops degenerate boxes silently; ShapesDataset
    says how many, where."""
    from unittest import mock

    from resobj_mmdet.datasets import ShapesDataset
    root = str(tmp_path / 'shapes')
    splits = dict(train=4, val=2)
    ensure_shapes(root, splits=splits)
    ann_file = osp.join(root, 'annotations', 'train.json')
    with open(ann_file) as f:
        coco = json.load(f)
    img_id = coco['images'][0]['id']
    next_id = max(a['id'] for a in coco['annotations']) + 1
    for i, box in enumerate([[5, 5, 0, 10], [5, 5, -3, -3], [900, 900, 9, 9]]):
        coco['annotations'].append(dict(
            id=next_id + i, image_id=img_id, category_id=1, bbox=box,
            area=max(box[2] * box[3], 0), iscrowd=0))
    with open(ann_file, 'w') as f:
        json.dump(coco, f)
    path = 'resobj_mmdet.datasets.synthetic_shapes.print_log'
    with mock.patch(path) as log:
        ds = ShapesDataset(data_root=root + '/', generate=dict(splits=splits),
                           ann_file='annotations/train.json',
                           data_prefix=dict(img='train/'), pipeline=[])
        ds.full_init()
    assert log.call_count == 1
    assert 'dropped 3 annotation(s) in 1 image(s)' in log.call_args.args[0]
    assert f'({img_id}, 3)' in log.call_args.args[0]
    with mock.patch(path) as log:  # a clean file: no warning
        ShapesDataset(data_root=root + '/', generate=dict(splits=splits),
                      ann_file='annotations/val.json',
                      data_prefix=dict(img='val/'), pipeline=[]).full_init()
    assert log.call_count == 0
