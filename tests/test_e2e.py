"""End to end: the demo config through mmengine's Runner and through mim."""
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from helpers import DEMO_RESOBJ, REPO, tiny_shapes_cfg_options, use_tiny_data

DEMOS = sorted(glob.glob(osp.join(REPO, 'configs', 'demo', '*.py')))


@pytest.mark.parametrize('path', DEMOS, ids=[osp.basename(p) for p in DEMOS])
def test_demo_config_trains_and_evaluates(path, tiny_shapes, tmp_path):
    cfg = use_tiny_data(Config.fromfile(path), tiny_shapes, str(tmp_path),
                        max_iters=2)
    runner = Runner.from_cfg(cfg)
    runner.train()
    scalars = runner.message_hub.log_scalars
    name = osp.basename(path)
    rpn_only = name.startswith(('rpn', 'resobj-rpn'))
    assert runner.iter == 2
    # RPN configs evaluate proposal recall, the others COCO bbox mAP.
    assert ('val/coco/AR@100' if rpn_only else 'val/coco/bbox_mAP') in scalars
    losses = [k for k in scalars if k.startswith('train/loss')]
    assert all(np.isfinite(scalars[k].current()) for k in losses)
    if name.startswith('resobj'):
        prefix = 'train/loss_rpn_res' if 'rpn' in name or 'faster' in name \
            else 'train/loss_res'
        assert {prefix + '1', prefix + '2'} <= set(losses), losses


def _weights(runner):
    return {k: v.detach().clone() for k, v in runner.model.state_dict().items()}


def test_train_eval_resume_test(tiny_shapes, tmp_path):
    work = str(tmp_path / 'run')
    cfg = use_tiny_data(Config.fromfile(DEMO_RESOBJ), tiny_shapes, work,
                        max_iters=4, val_interval=4, ckpt_interval=2)
    runner = Runner.from_cfg(cfg.copy())
    runner.train()
    assert runner.iter == 4
    ckpt2, ckpt4 = osp.join(work, 'iter_2.pth'), osp.join(work, 'iter_4.pth')
    assert osp.isfile(ckpt2) and osp.isfile(ckpt4)
    final = _weights(runner)
    scalars = runner.message_hub.log_scalars
    assert 'val/coco/bbox_mAP' in scalars, sorted(scalars)
    for key in ('loss_obj', 'loss_res1', 'loss_res2', 'loss_cls', 'loss_bbox'):
        assert f'train/{key}' in scalars

    # Resume from iteration 2 with torch's default weights_only loading.
    cfg2 = cfg.copy()
    cfg2.work_dir = str(tmp_path / 'resumed')
    cfg2.resume = True
    cfg2.load_from = ckpt2
    resumed = Runner.from_cfg(cfg2)
    resumed.train()
    assert resumed.iter == 4
    assert resumed.message_hub.get_info('iter') is not None
    w = _weights(resumed)
    assert w.keys() == final.keys()
    assert all(torch.isfinite(v.float()).all() for v in w.values())

    # Test from the checkpoint, as `mim test --checkpoint` does.
    cfg3 = cfg.copy()
    cfg3.work_dir = str(tmp_path / 'test')
    cfg3.load_from = ckpt4
    metrics = Runner.from_cfg(cfg3).test()
    assert 0.0 <= metrics['coco/bbox_mAP'] <= 1.0


@pytest.mark.skipif(shutil.which('mim') is None and not osp.isfile(
    osp.join(osp.dirname(sys.executable), 'mim')), reason='openmim missing')
def test_mim_train_and_test(tiny_shapes, tmp_path):
    mim = shutil.which('mim') or osp.join(osp.dirname(sys.executable), 'mim')
    root = tiny_shapes + '/'
    opts = tiny_shapes_cfg_options(root)
    work = str(tmp_path / 'mim')
    env = dict(os.environ, PYTHONPATH=REPO)
    subprocess.run([mim, 'train', 'mmdet', DEMO_RESOBJ, '--work-dir', work,
                    '--cfg-options', *opts], check=True, env=env, cwd=REPO)
    ckpt = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    out = subprocess.run(
        [mim, 'test', 'mmdet', DEMO_RESOBJ, '--checkpoint', ckpt, '--work-dir',
         work, '--cfg-options', *opts],
        check=True, env=env, cwd=REPO, capture_output=True, text=True)
    assert 'coco/bbox_mAP' in out.stdout + out.stderr


def _dynamo_traces_mmengine_stack_batch():
    """Whether this torch's dynamo can trace what mmengine's
    ``stack_batch`` does first, ``assert tensor_list`` on a list of
    tensors. torch 2.1's cannot (``scalar_tensor(): argument 's' must be
    Number``), so mmengine's ``compile=True`` fails in the data
    preprocessor, before any detector code, for every mmdet model."""
    if not hasattr(torch, 'compile'):
        return False
    # Built from source: pytest rewrites the asserts of this module, and
    # the rewritten one traces where mmengine's plain assert does not.
    scope = dict(torch=torch)
    exec('def stack(tensors):\n    assert tensors\n'
         '    return torch.stack(tensors)\n', scope)
    try:
        torch.compile(scope['stack'], backend='aot_eager')(
            [torch.ones(2)] * 2)
    except Exception:  # dynamo's errors have no common public base
        return False
    finally:
        torch._dynamo.reset()
    return True


@pytest.mark.skipif(
    not _dynamo_traces_mmengine_stack_batch(),
    reason='this torch cannot compile mmengine\'s data preprocessor '
    '(torch < 2.0, or torch 2.1\'s dynamo on `assert tensor_list`)')
def test_demo_trains_under_torch_compile(tiny_shapes, tmp_path):
    """mmengine's ``compile`` (``torch.compile`` of ``model.train_step``)
    trains the RetinaNet-ResObj demo.

    ``aot_eager`` traces forward and backward through dynamo and
    AOTAutograd (fake tensors, functionalisation: where a model breaks
    under compile) without inductor's C++ code generation, which takes
    minutes on 2 cores; ``benchmark_compile.py`` times inductor. The graph
    breaks (mmdet's assigners and samplers, our degenerate-GT host check)
    fall back to eager. The first iteration starts from the same weights and
    data as an eager run, so its losses must equal the eager ones.
    """
    losses = {}
    for mode in ('eager', 'compiled'):
        cfg = use_tiny_data(Config.fromfile(DEMO_RESOBJ), tiny_shapes,
                            str(tmp_path / mode), max_iters=2)
        if mode == 'compiled':
            cfg.compile = dict(backend='aot_eager')
        runner = Runner.from_cfg(cfg)
        runner.train()
        assert runner.iter == 2
        step = runner.model.train_step
        assert hasattr(step, '_torchdynamo_orig_callable') == (
            mode == 'compiled'), step
        scalars = runner.message_hub.log_scalars
        losses[mode] = {
            k: v.data[0]
            for k, v in scalars.items() if k.startswith('train/loss')
        }
        assert 'val/coco/bbox_mAP' in scalars
    assert set(losses['compiled']) == set(losses['eager'])
    assert {'train/loss_obj', 'train/loss_res1', 'train/loss_res2'} <= set(
        losses['eager'])
    for key, values in losses['eager'].items():
        compiled = losses['compiled'][key]
        assert np.isfinite(compiled).all(), key
        # Iteration 1: same weights and batch, so the same loss.
        np.testing.assert_allclose(compiled[0], values[0], rtol=1e-4,
                                   atol=1e-6, err_msg=key)
