import glob
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config

from helpers import REPO, DEMO_RESOBJ, use_tiny_data
from mmdet.registry import MODELS

CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                         recursive=True)
    # configs/deploy holds mmdeploy deploy configs: no model to build.
    if '_base_' not in p and '/configs/deploy/' not in p)


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
            'resobj-faster-rcnn_r101_fpn_1x_coco.py',
            'resobj-atss_r50_fpn_1x_coco.py', 'resobj-ssd300_coco.py',
            'resobj-yolox_s_8xb8-300e_coco.py'} <= names


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
        elif 'yolox' in name:
            expected_type = 'ResObjYOLOXHead'
        elif 'atss' in name:
            expected_type = 'ResObjATSSHead'
        elif 'ssd' in name:
            expected_type = 'ResObjSSDHead'
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


# Each real-image recipe against the mmdet COCO config whose optimizer it
# must carry: (config, mmdet config, expected lr at batch 4).
TREE_RECIPES = {
    'retinanet': ('retinanet_mobilenetv2_fpn_16e_trees.py',
                  'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
                  0.01 * 4 / 16),
    'faster-rcnn': ('faster-rcnn_mobilenetv2_fpn_12e_trees.py',
                    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
                    0.02 * 4 / 16),
    # Not scaled: YOLOv3's summed losses are always clipped (config note).
    'yolov3': ('yolov3_mobilenetv2_12e_trees.py',
               'mmdet::yolo/yolov3_mobilenetv2_8xb24-ms-416-300e_coco.py',
               0.003),
}


# The same for BCCD: (config, its twins, mmdet config, lr at batch 4).
BCCD_RECIPES = {
    'retinanet': ('retinanet_mobilenetv2_fpn_20e_bccd.py',
                  ['resobj-retinanet_mobilenetv2_fpn_20e_bccd.py'],
                  'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
                  0.01 * 4 / 16),
    'ghm': ('retinanet_mobilenetv2_fpn_ghm-20e_bccd.py', [],
            'mmdet::ghm/retinanet_r50_fpn_ghm-1x_coco.py', 0.01 * 4 / 16),
    # The same recipes trained to convergence (40 epochs).
    'retinanet-40e': ('retinanet_mobilenetv2_fpn_40e_bccd.py',
                      ['resobj-retinanet_mobilenetv2_fpn_40e_bccd.py'],
                      'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
                      0.01 * 4 / 16),
    'ghm-40e': ('retinanet_mobilenetv2_fpn_ghm-40e_bccd.py', [],
                'mmdet::ghm/retinanet_r50_fpn_ghm-1x_coco.py', 0.01 * 4 / 16),
    'faster-rcnn-40e': ('faster-rcnn_mobilenetv2_fpn_40e_bccd.py',
                        ['resobj-faster-rcnn_mobilenetv2_fpn_40e_bccd.py'],
                        'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
                        0.02 * 4 / 16),
    'faster-rcnn': ('faster-rcnn_mobilenetv2_fpn_20e_bccd.py',
                    ['resobj-faster-rcnn_mobilenetv2_fpn_20e_bccd.py'],
                    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
                    0.02 * 4 / 16),
    'yolov3': ('yolov3_mobilenetv2_20e_bccd.py',
               ['resobj-yolov3_mobilenetv2_20e_bccd.py'],
               'mmdet::yolo/yolov3_mobilenetv2_8xb24-ms-416-300e_coco.py',
               0.003),
    'atss': ('atss_mobilenetv2_fpn_20e_bccd.py',
             ['resobj-atss_mobilenetv2_fpn_20e_bccd.py'],
             'mmdet::atss/atss_r50_fpn_1x_coco.py', 0.01 * 4 / 16),
}
# Aquarium: the short recipe of a new user (mmdet's RetinaNet optimizer).
AQUARIUM_RECIPES = {
    'retinanet-short': (
        'retinanet_mobilenetv2_fpn_384-12e_aquarium.py',
        ['resobj-retinanet_mobilenetv2_fpn_384-12e_aquarium.py'],
        'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', 0.01 * 4 / 16),
    'ghm-short': ('retinanet_mobilenetv2_fpn_ghm-384-12e_aquarium.py', [],
                  'mmdet::ghm/retinanet_r50_fpn_ghm-1x_coco.py',
                  0.01 * 4 / 16),
}
# DeepPCB: mmdet's 1x recipes unchanged, at native scale.
DEEPPCB_RECIPES = {
    'retinanet': ('retinanet_mobilenetv2_fpn_crop320-12e_deeppcb.py',
                  ['resobj-retinanet_mobilenetv2_fpn_crop320-12e_deeppcb.py'],
                  'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
                  0.01 * 4 / 16),
    'ghm': ('retinanet_mobilenetv2_fpn_ghm-crop320-12e_deeppcb.py', [],
            'mmdet::ghm/retinanet_r50_fpn_ghm-1x_coco.py', 0.01 * 4 / 16),
    'faster-rcnn': (
        'faster-rcnn_mobilenetv2_fpn_crop320-12e_deeppcb.py',
        ['resobj-faster-rcnn_mobilenetv2_fpn_crop320-12e_deeppcb.py'],
        'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', 0.02 * 4 / 16),
}
RECIPES = [('trees', n, ['resobj-' + n], m, lr)
           for n, m, lr in TREE_RECIPES.values()] + \
    [('bccd', *r) for r in BCCD_RECIPES.values()] + \
    [('aquarium', *r) for r in AQUARIUM_RECIPES.values()] + \
    [('deeppcb', *r) for r in DEEPPCB_RECIPES.values()]


def test_every_real_image_config_has_its_recipe_checked():
    checked = {n for _, n, twins, _, _ in RECIPES for n in [n, *twins]}
    for folder in ('bccd', 'aquarium', 'deeppcb'):
        found = {osp.basename(p) for p in CONFIGS
                 if f'/configs/{folder}/' in p}
        assert found and found <= checked, folder


@pytest.mark.parametrize('recipe', RECIPES,
                         ids=[f'{r[0]}/{r[1]}' for r in RECIPES])
def test_real_image_recipes_carry_the_mmdet_coco_optimizer(recipe):
    folder, name, twins, mmdet_name, lr = recipe
    vanilla = Config.fromfile(osp.join(REPO, 'configs', folder, name))
    import mmdet
    coco = Config.fromfile(osp.join(
        osp.dirname(mmdet.__file__), '.mim', 'configs',
        mmdet_name[len('mmdet::'):]))
    resobjs = [Config.fromfile(osp.join(REPO, 'configs', folder, t))
               for t in twins]
    for cfg in (vanilla, *resobjs):
        opt, ref = cfg.optim_wrapper, coco.optim_wrapper
        assert opt.optimizer.type == ref.optimizer.type == 'SGD'
        assert opt.optimizer.momentum == ref.optimizer.momentum
        assert opt.optimizer.weight_decay == ref.optimizer.weight_decay
        assert opt.optimizer.lr == pytest.approx(lr)
        # Clipping exactly where mmdet clips: never added for ResObj.
        assert opt.get('clip_grad') == ref.get('clip_grad')
        warmup, ref_warmup = cfg.param_scheduler[0], coco.param_scheduler[0]
        assert warmup.type == ref_warmup.type == 'LinearLR'
        assert warmup.start_factor == ref_warmup.start_factor
        assert cfg.param_scheduler[1].type == 'MultiStepLR'
        assert cfg.model.backbone.init_cfg.checkpoint == \
            'resobj://mobilenet_v2_imagenet'
    for resobj in resobjs:
        # The same wrapper; YOLOv3-ResObj's constructor only clips the
        # residual subnets apart (tests/test_engine/test_optimizers).
        optim_wrapper = resobj.optim_wrapper.copy()
        if name.startswith('yolov3'):
            assert optim_wrapper.pop('constructor') == \
                'ResObjOptimWrapperConstructor'
        assert optim_wrapper == vanilla.optim_wrapper
        assert resobj.param_scheduler == vanilla.param_scheduler
        assert resobj.train_dataloader == vanilla.train_dataloader
        assert resobj.train_cfg == vanilla.train_cfg


def _sgd_stress_run(cfg, tmp_path, iters):
    """Train ``cfg`` ``iters`` iterations stressed: no warm-up, twice its
    lr, no validation or checkpoint; return the per-iteration losses after
    checking that every one is finite and that the objectness loss fell
    from its all-anchor start (training moved)."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    for key in ('val_dataloader', 'val_evaluator', 'val_cfg',
                'test_dataloader', 'test_evaluator', 'test_cfg'):
        cfg[key] = None
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters)
    cfg.optim_wrapper.optimizer.lr *= 2
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = None
    cfg.work_dir = str(tmp_path / 'work')
    cfg.randomness = dict(seed=0)
    cfg.visualizer.name = f'visualizer-{tmp_path}'

    class Record(Hook):
        logs = []

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            self.logs.append({k: float(v) for k, v in outputs.items()})

    runner = Runner.from_cfg(cfg)
    record = Record()
    runner.register_hook(record)
    runner.train()
    assert len(record.logs) == iters
    assert {'loss_obj', 'loss_res1', 'loss_res2', 'loss_cls',
            'loss_bbox'} <= set(record.logs[0])
    bad = [(i, k, v) for i, log in enumerate(record.logs)
           for k, v in log.items() if not np.isfinite(v)]
    assert not bad, f'non-finite losses: {bad[:5]}'
    assert record.logs[-1]['loss_obj'] < record.logs[0]['loss_obj']
    return record.logs


def test_tree_resobj_recipe_keeps_losses_finite_under_sgd(tmp_path,
                                                          monkeypatch):
    """RetinaNet-ResObj's real-image recipe, scaled down (synthetic scenes,
    random backbone, 30 iterations) and stressed: no warm-up and twice the
    recipe's lr, without gradient clipping. Every loss and gradient norm
    stays finite."""
    from helpers import write_voc_scene
    from resobj_mmdet.datasets import tree_crowns as tc

    src = tmp_path / 'src'
    src.mkdir()
    rng = np.random.RandomState(0)
    xy = rng.randint(0, 440, (40, 2))
    wh = rng.randint(10, 70, (40, 2))
    write_voc_scene(str(src), 'scene', 512, 512,
                    np.concatenate([xy, np.minimum(xy + wh, 511)], 1).tolist())
    files = {f'deepforest/data/scene.{ext}': str(src / f'scene.{ext}')
             for ext in ('png', 'xml')}
    monkeypatch.setattr(tc, 'fetch_asset', lambda asset, cache=None: files)

    cfg = Config.fromfile(osp.join(
        REPO, 'configs/trees/resobj-retinanet_mobilenetv2_fpn_16e_trees.py'))
    cfg.model.backbone.init_cfg = None
    ds = cfg.train_dataloader.dataset
    ds.data_root = str(tmp_path / 'trees') + '/'
    ds.prepare = dict(splits=dict(train=['scene'], val=[]),
                      tiling=dict(train=dict(tile=256, stride=128),
                                  val=dict(tile=256, stride=256)))
    _sgd_stress_run(cfg, tmp_path, 30)


def test_bccd_resobj_recipe_keeps_losses_finite_under_sgd(tmp_path):
    """RetinaNet-ResObj's BCCD recipe on the 3-image fixture clone (random
    backbone, 20 iterations), stressed as the tree one: no warm-up and
    twice the recipe's lr, no gradient clipping. Every loss stays finite
    and the objectness loss falls."""
    from helpers import write_bccd_clone

    root = str(tmp_path / 'BCCD_Dataset') + '/'
    write_bccd_clone(root)
    cfg = Config.fromfile(osp.join(
        REPO, 'configs/bccd/resobj-retinanet_mobilenetv2_fpn_20e_bccd.py'))
    assert cfg.optim_wrapper.get('clip_grad') is None
    cfg.model.backbone.init_cfg = None
    cfg.train_dataloader.dataset.data_root = root
    cfg.train_dataloader.batch_size = 2
    _sgd_stress_run(cfg, tmp_path, 20)


# The real-image configs test at their data's own scale, with no TTA.
TTA_CONFIGS = [
    p for p in CONFIGS
    if not re.search(r'/configs/(trees|bccd|aquarium|deeppcb)/', p)
]


@pytest.mark.parametrize('path', TTA_CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in TTA_CONFIGS])
def test_tta_blocks(path, tiny_shapes):
    """Every demo and COCO config states its tta_model/tta_pipeline; the
    pipeline turns one image into flips x scales views that DetTTAModel can
    merge (flip flags present, one view unflipped at the test scale)."""
    from mmdet.registry import TRANSFORMS
    cfg = Config.fromfile(path)
    assert cfg.tta_model.type == 'DetTTAModel'
    test_nms = cfg.model.test_cfg.get('nms') or cfg.model.test_cfg.get(
        'rcnn', cfg.model.test_cfg.get('rpn'))['nms']
    assert cfg.tta_model.tta_cfg.nms.iou_threshold == test_nms.iou_threshold
    load, tta = cfg.tta_pipeline
    assert load.type == 'LoadImageFromFile' and tta.type == 'TestTimeAug'
    pipeline = [TRANSFORMS.build(t) for t in cfg.tta_pipeline]
    img = glob.glob(osp.join(tiny_shapes, 'val', '*.png'))[0]
    data = dict(img_path=img, img_id=0, instances=[])
    for t in pipeline:
        data = t(data)
    scales = tta.transforms[0]
    views = data['data_samples']
    assert len(views) == 2 * len(scales)
    assert sorted(v.flip for v in views) == [False] * len(scales) + [
        True
    ] * len(scales)
    test_resize = [t for t in cfg.test_pipeline if t.type == 'Resize'] \
        if 'test_pipeline' in cfg else []
    if test_resize:
        assert test_resize[0].scale in [s.scale for s in scales]
