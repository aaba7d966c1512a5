import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from helpers import REPO, DEMO_RESOBJ, use_tiny_data
from mmdet.registry import MODELS

CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                         recursive=True) if '_base_' not in p)


def test_configs_found():
    names = {osp.basename(p) for p in CONFIGS}
    assert {'resobj-retinanet_r50_fpn_1x_coco.py',
            'resobj-retinanet-t0_r50_fpn_1x_coco.py',
            'resobj-retinanet-t1_r50_fpn_1x_coco.py',
            'resobj-retinanet-t3_r50_fpn_1x_coco.py',
            'resobj-retinanet_r101_fpn_1x_coco.py'} <= names


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_loads_and_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports == dict(imports=['resobj_mmdet'],
                                      allow_failed_imports=False)
    model = MODELS.build(cfg.model)
    head = model.bbox_head
    if 'resobj' in osp.basename(path):
        assert type(head).__name__ == 'ResObjHead'
        assert head.loss_cls.use_sigmoid
        name = osp.basename(path)
        expected = {'-t0_': 0, '-t1_': 1, '-t3_': 3}
        steps = next((v for k, v in expected.items() if k in name), 2)
        assert head.num_steps == steps
        assert head.res_obj.detach_residual


def test_coco_config_trains_on_embedded_dataset(tiny_shapes, tmp_path):
    """The COCO R50 config runs unchanged but for its data (and no download)."""
    from mmengine.runner import Runner
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/resobj/resobj-retinanet_r50_fpn_1x_coco.py'))
    demo = Config.fromfile(DEMO_RESOBJ)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                'val_evaluator', 'test_evaluator'):
        cfg[key] = demo[key]
    cfg.model.backbone.init_cfg = None
    cfg.model.bbox_head.num_classes = 4
    cfg = use_tiny_data(cfg, tiny_shapes, str(tmp_path), max_iters=2)
    cfg.val_cfg = None
    cfg.val_dataloader = None
    cfg.val_evaluator = None
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    scalars = runner.message_hub.log_scalars
    for key in ('loss_obj', 'loss_res1', 'loss_res2', 'loss_cls', 'loss_bbox'):
        value = scalars[f'train/{key}'].current()
        assert torch.isfinite(torch.tensor(value)), key
