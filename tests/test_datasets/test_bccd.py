"""BCCD (blood cells, Pascal VOC files) on a 3-image fixture clone."""
import os
import os.path as osp

import pytest
from mmengine.config import Config

from helpers import REPO, write_bccd_clone
from resobj_mmdet.datasets import BCCDDataset

BASE = osp.join(REPO, 'configs/bccd/_base_/bccd.py')


def _dataset(root, split='train', **kwargs):
    return BCCDDataset(
        data_root=root,
        ann_file=f'BCCD/ImageSets/Main/{split}.txt',
        data_prefix=dict(sub_data_root='BCCD/'),
        test_mode=split != 'train',
        pipeline=[],
        **kwargs)


def test_reads_voc_and_drops_degenerate_boxes(tmp_path):
    root = str(tmp_path / 'BCCD_Dataset')
    write_bccd_clone(root)
    ds = _dataset(root)
    assert ds.metainfo['classes'] == ('RBC', 'WBC', 'Platelets')
    assert len(ds) == 2
    info = ds.get_data_info(0)
    assert info['img_id'] == 'img0'
    assert info['img_path'] == osp.join(root, 'BCCD', 'JPEGImages',
                                        'img0.jpg')
    assert (info['width'], info['height']) == (64, 48)
    # VOC's 1-based pixels made 0-based (mmdet's XMLDataset); the point box
    # (30, 30, 30, 30) is gone, the border box stays.
    assert [(i['bbox'], i['bbox_label'], i['ignore_flag'])
            for i in info['instances']] == [([4, 4, 24, 24], 0, 0),
                                            ([39, 19, 63, 47], 1, 0)]
    assert [i['bbox_label'] for i in ds.get_data_info(1)['instances']] == \
        [2, 0]
    val = _dataset(root, 'val')
    assert len(val) == 1 and len(val.get_data_info(0)['instances']) == 2


def test_missing_root_names_path_and_clone_command(tmp_path):
    missing = str(tmp_path / 'nowhere' / 'BCCD_Dataset')
    with pytest.raises(FileNotFoundError) as err:
        _dataset(missing)
    assert missing in str(err.value)
    assert 'git clone https://github.com/Shenggan/BCCD_Dataset' in \
        str(err.value)
    assert 'BCCD_ROOT' in str(err.value)


def test_missing_image_set_and_annotation_are_named(tmp_path):
    root = str(tmp_path / 'clone')
    write_bccd_clone(root)
    with pytest.raises(FileNotFoundError, match=r'test\.txt'):
        _dataset(root, 'test')
    os.remove(osp.join(root, 'BCCD', 'Annotations', 'img1.xml'))
    with pytest.raises(FileNotFoundError, match=r'img1\.xml.*train\.txt'):
        _dataset(root)


def test_unknown_class_is_an_error_naming_the_file(tmp_path):
    root = str(tmp_path / 'clone')
    write_bccd_clone(root)
    xml = osp.join(root, 'BCCD', 'Annotations', 'img1.xml')
    with open(xml) as f:
        text = f.read()
    with open(xml, 'w') as f:
        f.write(text.replace('Platelets', 'Platelet'))
    with pytest.raises(ValueError, match=r"img1\.xml: object 0 has class "
                       r"'Platelet'"):
        _dataset(root)
    # A subset of BCCD's classes is a choice, not an error (mmdet's skip).
    with open(xml, 'w') as f:
        f.write(text)
    ds = _dataset(root, metainfo=dict(classes=('RBC', )))
    assert [i['bbox_label'] for i in ds.get_data_info(1)['instances']] == [0]


def test_base_config_reads_bccd_root_from_the_environment(monkeypatch):
    monkeypatch.delenv('BCCD_ROOT', raising=False)
    cfg = Config.fromfile(BASE)
    assert cfg.train_dataloader.dataset.data_root == 'data/BCCD_Dataset/'
    monkeypatch.setenv('BCCD_ROOT', '/some/clone/')
    cfg = Config.fromfile(BASE)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[key].dataset.data_root == '/some/clone/'
    assert cfg.val_evaluator.type == 'CocoMetric'
    assert cfg.val_evaluator.ann_file is None
    assert cfg.val_evaluator.classwise


def test_coco_metric_evaluates_from_the_parsed_boxes(tmp_path):
    """CocoMetric without ann_file scores the dataset's own boxes: the
    ground truth as prediction gives AP 1 for every class present."""
    import numpy as np
    import torch
    from mmdet.evaluation import CocoMetric
    from mmdet.registry import TRANSFORMS
    from mmengine.dataset import Compose

    root = str(tmp_path / 'clone')
    write_bccd_clone(root, splits=dict(train=['img0'],
                                       val=['img0', 'img1', 'img2']))
    cfg = Config.fromfile(BASE)
    pipeline = Compose([TRANSFORMS.build(t) for t in cfg.test_pipeline])
    ds = _dataset(root, 'val')
    metric = CocoMetric(ann_file=None, metric='bbox', classwise=True)
    metric.dataset_meta = ds.metainfo
    samples = []
    for i in range(len(ds)):
        data = pipeline(ds.get_data_info(i))
        sample = data['data_samples'].to_dict()
        gt = [inst for inst in ds.get_data_info(i)['instances']]
        sample['pred_instances'] = dict(
            bboxes=torch.tensor([g['bbox'] for g in gt], dtype=torch.float),
            scores=torch.ones(len(gt)),
            labels=torch.tensor([g['bbox_label'] for g in gt]))
        samples.append(sample)
    metric.process({}, samples)
    results = metric.compute_metrics(metric.results)
    assert results['bbox_mAP'] == pytest.approx(1.0)
    for name in ('RBC', 'WBC', 'Platelets'):
        assert results[f'{name}_precision'] == pytest.approx(1.0)
    assert np.isfinite(results['bbox_mAP_50'])
