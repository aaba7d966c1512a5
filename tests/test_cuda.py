"""CUDA checks: mixed precision for every ResObj detector, no host sync in
the ResObj loss, CPU/CUDA agreement. Marked ``cuda``: skipped without a
GPU; the GPU kit runs them (``pytest -m cuda``, tools/gpu/validate.py)."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from helpers import REPO, use_tiny_data

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason='needs a CUDA device (the GPU kit runs these)')
]
DEMO = osp.join(REPO, 'configs', 'demo')
DETECTORS = [
    'resobj-retinanet_r18-w16_fpn_12e_shapes.py',
    'resobj-yolov3_r18-w16_12e_shapes.py',
    'resobj-faster-rcnn_r18-w16_fpn_12e_shapes.py',
    'resobj-atss_r18-w16_fpn_12e_shapes.py',
    'resobj-ssd_r18-w16_12e_shapes.py',
    'resobj-yolox_r18-w16_12e_shapes.py',
]


def _train_losses(work_dir):
    records = []
    for path in sorted(
            __import__('glob').glob(osp.join(work_dir, '*', 'vis_data',
                                             'scalars.json'))):
        with open(path) as f:
            records += [json.loads(line) for line in f]
    return {r['iter']: {k: v for k, v in r.items() if k.startswith('loss')}
            for r in records if 'loss' in r}


def _train(demo, tiny_shapes, work_dir, mode, iters=5):
    from resobj_mmdet.models.losses import ResidualObjectnessLoss
    cfg = use_tiny_data(Config.fromfile(osp.join(DEMO, demo)), tiny_shapes,
                        work_dir, max_iters=iters)
    if mode == 'fp16':
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.dtype = 'float16'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    runner = Runner.from_cfg(cfg)
    dtypes = set()
    for m in runner.model.modules():
        if isinstance(m, ResidualObjectnessLoss):
            m.register_forward_hook(
                lambda mod, inp, out: dtypes.update(v.dtype
                                                    for v in out.values()))
    if mode == 'bf16':
        with torch.autocast('cuda', dtype=torch.bfloat16):
            runner.train()
    else:
        runner.train()
    return runner, dtypes


@pytest.mark.parametrize('mode', ['fp16', 'bf16'])
@pytest.mark.parametrize('demo', DETECTORS)
def test_mixed_precision_training(demo, mode, tiny_shapes, tmp_path):
    """fp16 AmpOptimWrapper / bf16 autocast: finite losses and gradients,
    the ResObj loss computed in fp32."""
    try:
        runner, dtypes = _train(demo, tiny_shapes, str(tmp_path), mode)
    except NotImplementedError as e:
        # mmcv 2.1.0's CUDA RoIAlign has no bf16 kernel: vanilla Faster
        # R-CNN fails the same way (tools/gpu/validate.py shows both).
        if mode == 'bf16' and 'roi_align' in str(e):
            pytest.skip(f"mmcv's own limitation: {e}")
        raise
    assert next(runner.model.parameters()).is_cuda
    losses = _train_losses(str(tmp_path))
    assert sorted(losses) == [1, 2, 3, 4, 5]
    assert all(np.isfinite(v) for it in losses.values() for v in it.values())
    assert all(torch.isfinite(p.grad).all()
               for p in runner.model.parameters() if p.grad is not None)
    assert dtypes == {torch.float32}


@pytest.mark.parametrize('momentum', [None, 0.9])
def test_resobj_loss_has_no_host_sync(momentum):
    from resobj_mmdet.models.losses import ResidualObjectnessLoss
    loss = ResidualObjectnessLoss(avg_factor_momentum=momentum).cuda()
    g = torch.Generator(device='cuda').manual_seed(0)
    logits = torch.randn(4, 3, 5000, device='cuda', generator=g,
                         requires_grad=True)
    labels = (torch.rand(4, 5000, device='cuda', generator=g) > 0.98).float()
    weights = torch.ones_like(labels)
    avg_factor = labels.sum()  # a device tensor, as the heads pass it
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode('error')
    try:
        for _ in range(2):  # EMA start and update
            out = loss(logits, labels, weights, avg_factor=avg_factor)
            sum(out.values()).backward()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert torch.isfinite(logits.grad).all()


def test_loss_matches_cpu():
    from resobj_mmdet.models.losses import ResidualObjectnessLoss
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 2000) * 3
    labels = (torch.rand(2, 2000) > 0.95).float()
    weights = (torch.rand(2, 2000) > 0.1).float()
    loss = ResidualObjectnessLoss()
    cpu = loss(logits, labels, weights, avg_factor=labels.sum())
    gpu = loss.cuda()(logits.cuda(), labels.cuda(), weights.cuda(),
                      avg_factor=labels.sum().cuda())
    for key in cpu:
        torch.testing.assert_close(gpu[key].cpu(), cpu[key], rtol=1e-5,
                                   atol=1e-6, msg=key)
