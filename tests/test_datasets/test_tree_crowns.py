"""Tiling of the real-image (tree crown) dataset, on hand-made scenes."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest

from helpers import write_voc_scene as _scene
from resobj_mmdet.datasets import tree_crowns as tc


def test_tile_starts():
    assert tc.tile_starts(400, 400, 200) == [0]
    assert tc.tile_starts(300, 400, 200) == [0]  # shorter than a tile
    assert tc.tile_starts(800, 400, 400) == [0, 400]  # exact fit
    # 1249 px, stride 400: four tiles, evenly spread, the last at the edge.
    assert tc.tile_starts(1249, 400, 400) == [0, 283, 566, 849]
    assert tc.tile_starts(600, 400, 100) == [0, 100, 200]
    with pytest.raises(ValueError, match='stride'):
        tc.tile_starts(100, 50, 0)


def test_crop_boxes_clips_and_marks_slivers():
    boxes = np.array([
        [10, 10, 30, 30],  # inside
        [90, 10, 130, 30],  # 10 of 40 px wide inside: 25 % -> crowd
        [70, 40, 110, 60],  # 30 of 40 px inside: 75 % -> kept, clipped
        [99.5, 0, 140, 20],  # 0.5 px inside: dropped
        [200, 200, 220, 220],  # outside: dropped
        [-20, 80, 20, 120],  # half inside (x), 20 of 40 in y: 25 % -> crowd
    ], dtype=np.float64)
    out, crowd = tc.crop_boxes(boxes, 0, 0, 100, 100, min_visible=0.5)
    np.testing.assert_allclose(out, [[10, 10, 30, 30], [90, 10, 100, 30],
                                     [70, 40, 100, 60], [0, 80, 20, 100]])
    assert crowd.tolist() == [False, True, False, True]
    # Tile coordinates: shifted by the tile origin.
    out, crowd = tc.crop_boxes(boxes[:1], 5, 8, 100, 100)
    np.testing.assert_allclose(out, [[5, 2, 25, 22]])
    assert crowd.tolist() == [False]


def test_parse_voc_maps_names_and_rejects_unknown(tmp_path):
    _scene(str(tmp_path), 's', 50, 40, [[1, 2, 11, 12], [5, 5, 20, 30]],
           names=['Alive', 'Dead'])
    w, h, boxes = tc.parse_voc(str(tmp_path / 's.xml'))
    assert (w, h) == (50, 40)
    np.testing.assert_array_equal(boxes, [[1, 2, 11, 12], [5, 5, 20, 30]])
    _scene(str(tmp_path), 'bad', 50, 40, [[1, 2, 11, 12]], names=['Car'])
    with pytest.raises(ValueError, match=r"bad\.xml: object 0 has class 'Car'"):
        tc.parse_voc(str(tmp_path / 'bad.xml'))


@pytest.fixture()
def scenes(tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    _scene(str(src), 'big', 300, 250, [[10, 10, 40, 40], [140, 100, 180, 150],
                                       [270, 200, 300, 250]])
    _scene(str(src), 'small', 120, 100, [[20, 20, 60, 70]])
    return {'big': str(src), 'small': str(src)}, tmp_path


def test_build_writes_disjoint_coco_splits(scenes):
    sources, tmp_path = scenes
    root = str(tmp_path / 'out')
    tc.build_tree_crowns(
        root, sources, splits=dict(train=['big'], val=['small']),
        tiling=dict(train=dict(tile=200, stride=100),
                    val=dict(tile=200, stride=200)))
    with open(osp.join(root, 'annotations', 'train.json')) as f:
        train = json.load(f)
    with open(osp.join(root, 'annotations', 'val.json')) as f:
        val = json.load(f)
    # 300 x 250 in 200 px tiles, stride 100: x at 0, 100; y at 0, 50.
    assert [(i['x0'], i['y0']) for i in train['images']] == \
        [(0, 0), (100, 0), (0, 50), (100, 50)]
    assert {i['scene'] for i in train['images']} == {'big'}
    assert train['info']['split'] == 'train'  # pycocotools 2.0.10 needs it
    assert {i['scene'] for i in val['images']} == {'small'}
    # The small scene is one tile of its own size.
    assert [(i['width'], i['height']) for i in val['images']] == [(120, 100)]
    assert val['annotations'][0]['bbox'] == [20, 20, 40, 50]
    for im in train['images']:
        tile = cv2.imread(osp.join(root, 'train', im['file_name']))
        assert tile.shape[:2] == (im['height'], im['width']) == (200, 200)
    # Box (140,100)-(180,150) in tile (100, 50): at (40, 50).
    tile1 = [a for a in train['annotations']
             if a['image_id'] == 3 and not a['iscrowd']]
    assert [40.0, 50.0, 40.0, 50.0] in [a['bbox'] for a in tile1]
    assert train['categories'] == [dict(id=1, name='Tree')]


def test_build_refuses_a_scene_in_two_splits(scenes):
    sources, tmp_path = scenes
    with pytest.raises(ValueError, match='disjoint'):
        tc.build_tree_crowns(
            str(tmp_path / 'out'), sources,
            splits=dict(train=['big'], val=['big']),
            tiling=dict(train=dict(tile=200, stride=100),
                        val=dict(tile=200, stride=200)))


def test_coco_json_loads_in_mmdet_cocodataset(scenes, monkeypatch):
    sources, tmp_path = scenes
    files = {f'deepforest/data/{s}.{ext}': osp.join(sources[s], f'{s}.{ext}')
             for s in sources for ext in ('png', 'xml')}
    monkeypatch.setattr(tc, 'fetch_asset', lambda asset, cache=None: files)
    root = str(tmp_path / 'trees')
    splits = dict(train=['big'], val=['small'])
    tiling = dict(train=dict(tile=200, stride=100),
                  val=dict(tile=200, stride=200))
    from mmdet.datasets import CocoDataset
    from mmdet.registry import DATASETS
    ds = DATASETS.build(
        dict(type='TreeCrownsDataset', data_root=root,
             prepare=dict(splits=splits, tiling=tiling),
             ann_file='annotations/train.json', data_prefix=dict(img='train/'),
             pipeline=[]))
    assert isinstance(ds, CocoDataset)
    assert len(ds) == 4 and ds.metainfo['classes'] == ('Tree', )
    first = ds[0]
    assert osp.isfile(first['img_path'])
    assert first['instances'][0]['bbox'] == [10.0, 10.0, 40.0, 40.0]
    # Plain mmdet CocoDataset reads the same file; crowd slivers ignored.
    plain = CocoDataset(
        data_root=root, ann_file='annotations/train.json',
        data_prefix=dict(img='train/'), metainfo=dict(classes=('Tree', )),
        pipeline=[])
    flags = [i['ignore_flag'] for d in plain for i in d['instances']]
    assert 0 in flags
    # A second build with other arguments is refused, not silently reused.
    with pytest.raises(RuntimeError, match='generated with'):
        tc.ensure_tree_crowns(root, splits=splits, tiling=tiling,
                              min_visible=0.3)
