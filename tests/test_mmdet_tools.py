"""mmdet's own tools on our models: analysis tools, ``--tta``, ``--out``.

Each tool runs once, as a user runs it (``python $MMDET/.mim/tools/...``),
on a demo-sized RetinaNet-ResObj trained here for one short epoch.
"""
import glob
import os
import os.path as osp
import pickle
import subprocess
import sys

import mmdet
import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from helpers import DEMO_RESOBJ, REPO, TINY_SPLITS

MMDET_TOOLS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools')


def run_tool(script, *args, cwd):
    """Run one of mmdet's tool scripts; return its stdout + stderr."""
    env = dict(os.environ, PYTHONPATH=REPO, MPLBACKEND='Agg')
    proc = subprocess.run([sys.executable, osp.join(MMDET_TOOLS, script),
                           *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{script} failed:\n{out[-3000:]}'
    return out


@pytest.fixture(scope='module')
def demo_run(tiny_shapes, tmp_path_factory):
    """One epoch (8 iterations) of the RetinaNet-ResObj demo on the tiny
    shapes set, evaluated; returns (work_dir, config path, checkpoint)."""
    work = str(tmp_path_factory.mktemp('mmdet_tools'))
    cfg = Config.fromfile(DEMO_RESOBJ)
    root = tiny_shapes + '/'
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = root
        cfg[key].dataset.generate = dict(splits=TINY_SPLITS)
        cfg[key].batch_size = 2
        cfg[key].num_workers = 0
        cfg[key].persistent_workers = False
    for key in ('val_evaluator', 'test_evaluator'):
        cfg[key].ann_file = root + 'annotations/val.json'
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1,
                         val_interval=1)
    cfg.param_scheduler = []
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.model.test_cfg.score_thr = 0.0
    cfg.randomness = dict(seed=0)
    cfg.visualizer.name = f'visualizer-{work}'
    cfg.work_dir = work
    config = osp.join(work, 'demo_tiny.py')
    cfg.dump(config)
    Runner.from_cfg(Config.fromfile(config)).train()
    return work, config, osp.join(work, 'epoch_1.pth')


def test_analyze_logs(demo_run, tmp_path):
    work, _, _ = demo_run
    (scalars, ) = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    png = tmp_path / 'losses.png'
    run_tool('analysis_tools/analyze_logs.py', 'plot_curve', scalars,
             '--keys', 'loss', 'loss_obj', 'loss_res1', '--out', png,
             cwd=tmp_path)
    assert png.stat().st_size > 1000
    out = run_tool('analysis_tools/analyze_logs.py', 'cal_train_time',
                   scalars, cwd=tmp_path)
    assert 'average iter time' in out


@pytest.mark.parametrize('task', ['dataloader', 'dataset'])
def test_benchmark_data_tasks(demo_run, tmp_path, task):
    # The inference task needs CUDA (mmdet moves the model to the GPU); the
    # GPU kit runs it (tests/test_cuda.py).
    _, config, _ = demo_run
    out = run_tool('analysis_tools/benchmark.py', config, '--task', task,
                   '--max-iter', 4, '--num-warmup', 1, '--log-interval', 1,
                   '--work-dir', tmp_path, cwd=tmp_path)
    assert 'Overall fps' in out


def test_browse_dataset(demo_run, tmp_path):
    _, config, _ = demo_run
    run_tool('analysis_tools/browse_dataset.py', config, '--output-dir',
             tmp_path / 'browse', '--not-show', cwd=tmp_path)
    shown = glob.glob(str(tmp_path / 'browse' / '*.png'))
    # train images without any object are filtered by the train split
    assert 0 < len(shown) <= TINY_SPLITS['train']


def test_get_flops(demo_run, tmp_path):
    _, config, _ = demo_run
    out = run_tool('analysis_tools/get_flops.py', config, '--num-images', 2,
                   cwd=tmp_path)
    assert 'Flops:' in out and 'Params:' in out


def test_test_out_then_confusion_matrix(demo_run, tmp_path):
    _, config, ckpt = demo_run
    pkl = tmp_path / 'results.pkl'
    run_tool('test.py', config, ckpt, '--out', pkl, '--work-dir',
             tmp_path, cwd=tmp_path)
    with open(pkl, 'rb') as f:
        results = pickle.load(f)
    assert len(results) == TINY_SPLITS['val']
    assert {'bboxes', 'scores', 'labels'} <= set(results[0]['pred_instances'])
    run_tool('analysis_tools/confusion_matrix.py', config, pkl,
             tmp_path / 'cm', '--score-thr', 0.05, cwd=tmp_path)
    assert (tmp_path / 'cm' / 'confusion_matrix.png').stat().st_size > 1000


def test_tta_uses_the_config_blocks(demo_run, tmp_path):
    _, config, ckpt = demo_run
    out = run_tool('test.py', config, ckpt, '--tta', '--work-dir', tmp_path,
                   cwd=tmp_path)
    assert 'coco/bbox_mAP' in out
    # mmdet falls back to a flip-only DetTTAModel (with this warning) when a
    # config has no tta_model: ours must not need the fallback.
    assert 'Cannot find ``tta_model``' not in out
    assert 'Cannot find ``tta_pipeline``' not in out
