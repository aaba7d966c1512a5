"""Long-run robustness through mmengine's Runner: hostile datasets, bad
configs, CPU autocast, resume determinism and 2-process distributed
training."""
import json
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from helpers import DEMO_RESOBJ, REPO, use_tiny_data

DEMO = osp.join(REPO, 'configs', 'demo')


def _scalars(work_dir):
    """Every record of the run's ``vis_data/scalars.json``."""
    paths = sorted(
        p for p in (osp.join(work_dir, d, 'vis_data', 'scalars.json')
                    for d in os.listdir(work_dir)) if osp.isfile(p))
    records = []
    for path in paths:
        with open(path) as f:
            records += [json.loads(line) for line in f if line.strip()]
    return records


def _train_losses(work_dir):
    return {r['iter']: {k: v for k, v in r.items() if k.startswith('loss')}
            for r in _scalars(work_dir) if 'loss' in r}


# ------------------------------------------------------------ hostile data
def _hostile_coco(root):
    """A COCO dataset of hostile images; returns (root, #bad annotations)."""
    os.makedirs(osp.join(root, 'img'))
    rng = np.random.RandomState(0)
    images, anns = [], []

    def add_image(name, h, w, gray=False):
        img = rng.randint(0, 255, (h, w) if gray else (h, w, 3), np.uint8)
        cv2.imwrite(osp.join(root, 'img', name), img)
        images.append(dict(id=len(images) + 1, file_name=name, height=h,
                           width=w))
        return len(images)

    def add_ann(img_id, box, crowd=0, area=None):
        x, y, w, h = box
        anns.append(dict(id=len(anns) + 1, image_id=img_id, category_id=1,
                         bbox=[x, y, w, h], iscrowd=crowd,
                         area=w * h if area is None else area))

    add_image('empty.png', 96, 96)  # no annotation at all
    crowd = add_image('crowd.png', 96, 96)
    add_ann(crowd, [10, 10, 50, 50], crowd=1)
    bad = add_image('degenerate.png', 96, 96)
    add_ann(bad, [10, 10, 0, 30])  # zero width
    add_ann(bad, [50, 50, -20, -20])  # inverted
    add_ann(bad, [200, 200, 30, 30])  # outside the image
    add_ann(bad, [20, 20, 30, 30], area=0)  # zero area
    add_ann(bad, [20, 20, 30, 30])  # the one valid box
    tiny = add_image('tiny-gt.png', 96, 96)
    add_ann(tiny, [40, 40, 1, 1])
    gray = add_image('gray.png', 80, 64, gray=True)
    add_ann(gray, [5, 5, 30, 40])
    small = add_image('small.png', 12, 10)
    add_ann(small, [1, 1, 8, 9])
    many = add_image('many.png', 128, 128)
    for _ in range(500):
        x, y = rng.uniform(0, 110, 2)
        w, h = rng.uniform(2, 18, 2)
        add_ann(many, [float(x), float(y), float(w), float(h)])
    coco = dict(images=images, annotations=anns,
                categories=[dict(id=i + 1, name=n) for i, n in enumerate(
                    ('circle', 'square', 'triangle', 'star'))])
    os.makedirs(osp.join(root, 'annotations'))
    with open(osp.join(root, 'annotations', 'hostile.json'), 'w') as f:
        json.dump(coco, f)
    return 4  # annotations mmdet's CocoDataset drops


def _hostile_cfg(path, root, work_dir, max_iters=7):
    cfg = Config.fromfile(path)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dl = cfg[key]
        dl.batch_size = 1
        dl.num_workers = 0
        dl.persistent_workers = False
        dl.dataset = dict(
            type='CocoDataset', data_root=root + '/',
            metainfo=dict(classes=('circle', 'square', 'triangle', 'star')),
            ann_file='annotations/hostile.json', data_prefix=dict(img='img/'),
            # Empty and crowd-only images stay in.
            filter_cfg=dict(filter_empty_gt=False),
            pipeline=dl.dataset.pipeline, test_mode=key != 'train_dataloader')
    cfg.train_dataloader.sampler = dict(type='DefaultSampler', shuffle=False)
    cfg.train_dataloader.pop('batch_sampler', None)
    for key in ('val_evaluator', 'test_evaluator'):
        cfg[key].ann_file = osp.join(root, 'annotations/hostile.json')
    cfg.work_dir = work_dir
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                         val_interval=max_iters)
    cfg.param_scheduler = []
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        interval=max_iters, by_epoch=False)
    cfg.log_processor = dict(by_epoch=False)
    cfg.visualizer.name = f'visualizer-{work_dir}'
    cfg.model.test_cfg.get('rcnn', cfg.model.test_cfg).score_thr = 0.0
    return cfg


@pytest.fixture(scope='module')
def hostile_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('hostile') / 'coco')
    _hostile_coco(root)
    return root


RESOBJ_DEMOS = sorted(
    p for p in os.listdir(DEMO) if p.startswith('resobj-'))


@pytest.mark.parametrize('name', RESOBJ_DEMOS)
def test_hostile_dataset_trains_and_evaluates(name, hostile_root, tmp_path):
    """7 iterations, one per hostile image (empty, crowd-only, degenerate
    boxes, a 1 px box, grayscale, 12x10 px, 500 boxes), then evaluation."""
    cfg = _hostile_cfg(osp.join(DEMO, name), hostile_root, str(tmp_path))
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 7
    losses = _train_losses(str(tmp_path))
    assert sorted(losses) == list(range(1, 8))
    for it, values in losses.items():
        assert all(np.isfinite(v) for v in values.values()), (it, values)


# ------------------------------------------------------------- bad configs
def test_num_classes_contradicting_dataset_fails_before_training(
        tiny_shapes, tmp_path):
    cfg = use_tiny_data(Config.fromfile(DEMO_RESOBJ), tiny_shapes,
                        str(tmp_path), max_iters=2)
    cfg.model.bbox_head.num_classes = 3  # the dataset has 4 classes
    runner = Runner.from_cfg(cfg)
    with pytest.raises(AssertionError, match=r'`num_classes` \(3\)'):
        runner.train()
    assert runner.iter == 0


# ----------------------------------------------------------- CPU autocast
def test_bf16_autocast_training(tiny_shapes, tmp_path):
    cfg = use_tiny_data(Config.fromfile(DEMO_RESOBJ), tiny_shapes,
                        str(tmp_path), max_iters=3)
    runner = Runner.from_cfg(cfg)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        runner.train()
    losses = _train_losses(str(tmp_path))
    assert sorted(losses) == [1, 2, 3]
    assert all(np.isfinite(v) for it in losses.values() for v in it.values())


# fp16 AmpOptimWrapper (CUDA only): tests/test_cuda.py, `pytest -m cuda`.


# ------------------------------------------------------ resume determinism
def _deterministic(cfg):
    cfg.randomness = dict(seed=0, deterministic=True)
    return cfg


def test_resume_is_deterministic(tiny_shapes, tmp_path):
    """6 iterations uninterrupted == 3, stop, resume, 3 more."""
    full_dir, half_dir, resumed_dir = (str(tmp_path / d)
                                       for d in ('full', 'half', 'resumed'))
    full = Runner.from_cfg(_deterministic(use_tiny_data(
        Config.fromfile(DEMO_RESOBJ), tiny_shapes, full_dir, max_iters=6)))
    full.train()
    half = Runner.from_cfg(_deterministic(use_tiny_data(
        Config.fromfile(DEMO_RESOBJ), tiny_shapes, half_dir, max_iters=3)))
    half.train()
    cfg = _deterministic(use_tiny_data(
        Config.fromfile(DEMO_RESOBJ), tiny_shapes, resumed_dir, max_iters=6))
    cfg.resume = True
    cfg.load_from = osp.join(half_dir, 'iter_3.pth')
    resumed = Runner.from_cfg(cfg)
    resumed.train()
    assert resumed.iter == 6

    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5,
                                   msg=key)
    logged_full = _train_losses(full_dir)
    logged = {**_train_losses(half_dir), **_train_losses(resumed_dir)}
    assert sorted(logged) == sorted(logged_full) == list(range(1, 7))
    for it in logged_full:
        for key, value in logged_full[it].items():
            assert logged[it][key] == pytest.approx(value, rel=1e-4,
                                                    abs=1e-6), (it, key)


# ------------------------------------------------------------ distributed
def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_process_gloo_training(tiny_shapes, tmp_path):
    """mmengine's pytorch launcher, 2 processes, gloo: a few iterations and
    the distributed evaluation, through mmdet's own tools/train.py."""
    import mmdet
    train_py = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools',
                        'train.py')
    work = str(tmp_path / 'dist')
    cfg = use_tiny_data(Config.fromfile(DEMO_RESOBJ), tiny_shapes, work,
                        max_iters=4)
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    cfg_path = str(tmp_path / 'dist_cfg.py')
    cfg.dump(cfg_path)
    torchrun = shutil.which('torchrun') or osp.join(
        osp.dirname(sys.executable), 'torchrun')
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join(
                   [osp.join(REPO, 'tools', 'misc', 'cpu_dist'), REPO]))
    proc = subprocess.run(
        [torchrun, '--nproc_per_node', '2', '--master_port',
         str(_free_port()), train_py, cfg_path, '--launcher', 'pytorch'],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    logs = [osp.join(work, d, d + '.log') for d in os.listdir(work)
            if osp.isfile(osp.join(work, d, d + '.log'))]
    assert logs, os.listdir(work)
    with open(logs[0]) as f:
        log = f.read()
    # mmengine's environment report: 2 processes (it says "GPU number").
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    losses = _train_losses(work)
    assert sorted(losses) == [1, 2, 3, 4]
    assert all(np.isfinite(v) for it in losses.values() for v in it.values())
    assert osp.isfile(osp.join(work, 'iter_4.pth'))
    assert any('coco/bbox_mAP' in r for r in _scalars(work))
