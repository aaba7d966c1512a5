import glob
import os.path as osp
import re

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
            'resobj-retinanet_r101_fpn_1x_coco.py',
            'resobj-yolov3_d53_8xb8-ms-608-273e_coco.py',
            'resobj-yolov3_d53_8xb8-320-273e_coco.py',
            'resobj-yolov3_mobilenetv2_8xb24-ms-416-300e_coco.py',
            'resobj-rpn_r50_fpn_1x_coco.py',
            'resobj-faster-rcnn_r50_fpn_1x_coco.py',
            'resobj-faster-rcnn_r101_fpn_1x_coco.py'} <= names


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_loads_and_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports == dict(imports=['resobj_mmdet'],
                                      allow_failed_imports=False)
    model = MODELS.build(cfg.model)
    name = osp.basename(path)
    head = getattr(model, 'rpn_head', None) or model.bbox_head
    if name.startswith('resobj'):
        if 'yolov3' in name:
            expected_type = 'ResObjYOLOV3Head'
        elif 'rpn' in name or 'faster-rcnn' in name:
            expected_type = 'ResObjRPNHead'
        else:
            expected_type = 'ResObjHead'
        assert type(head).__name__ == expected_type
        assert head.loss_cls.use_sigmoid
        match = re.search(r'-t(\d)[-_]', name)
        assert head.num_steps == (int(match.group(1)) if match else 2)
        modules = head.residual_objectness_modules
        assert all(m.detach_residual for m in modules) == ('-flow_' not in
                                                           name)
        assert all(m.residual_input == ('class' if '-clshead_' in name else
                                        'objectness') for m in modules)
    else:
        assert not hasattr(head, 'num_steps')


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


def _samplers(cfg):
    """Every sampler config found anywhere under ``cfg``."""
    if isinstance(cfg, dict):
        found = [cfg] if 'Sampler' in str(cfg.get('type', '')) else []
        for value in cfg.values():
            found += _samplers(value)
        return found
    if isinstance(cfg, (list, tuple)):
        return [s for value in cfg for s in _samplers(value)]
    return []


RPN_RESOBJ = [
    p for p in CONFIGS if osp.basename(p).startswith('resobj') and (
        'rpn' in osp.basename(p) or 'faster-rcnn' in osp.basename(p))
]


@pytest.mark.parametrize('path', RPN_RESOBJ,
                         ids=[osp.basename(p) for p in RPN_RESOBJ])
def test_resobj_rpn_has_no_random_sampler(path):
    cfg = Config.fromfile(path)
    rpn_cfgs = [cfg.model.train_cfg.rpn]
    assert [s['type'] for s in _samplers(rpn_cfgs)] == ['PseudoSampler']
    assert cfg.model.rpn_head.type == 'ResObjRPNHead'
    if 'faster-rcnn' in osp.basename(path):
        # The R-CNN stage keeps its own sampler.
        assert cfg.model.train_cfg.rcnn.sampler.type == 'RandomSampler'
    assert len(RPN_RESOBJ) >= 4
