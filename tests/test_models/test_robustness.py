"""Hostile targets and extreme numerics through every ResObj detector.

The models are the demo configs' (RetinaNet, YOLOv3, RPN and Faster R-CNN
with ResObj heads, ResNet-18 at 16 channels), run on 128x128 batches: every
loss must stay finite, backward must give finite gradients, and degenerate
boxes must be dropped with a logged warning rather than matched.
"""
import logging
import os.path as osp
from unittest import mock

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample

from resobj_mmdet.models.losses import ResidualObjectnessLoss

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMOS = {
    'retinanet': 'resobj-retinanet_r18-w16_fpn_12e_shapes.py',
    'yolov3': 'resobj-yolov3_r18-w16_12e_shapes.py',
    'rpn': 'resobj-rpn_r18-w16_fpn_12e_shapes.py',
    'faster-rcnn': 'resobj-faster-rcnn_r18-w16_fpn_12e_shapes.py',
}
SIZE = 128


def build(name):
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(REPO, 'configs/demo', DEMOS[name]))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    model.init_weights()
    logger.setLevel(level)
    return model


@pytest.fixture(scope='module', params=list(DEMOS))
def model(request):
    return build(request.param)


def resobj_head(model):
    return getattr(model, 'rpn_head', None) or model.bbox_head


def boxes_of(case, g):
    """(boxes, labels, ignored boxes) of one image for a hostile case."""
    empty = torch.zeros(0, 4)
    if case == 'no_gt':
        return empty, empty
    if case == 'crowd_only':
        return empty, torch.tensor([[10., 10., 60., 60.], [70, 70, 120, 90]])
    if case == 'degenerate':  # zero-area, inverted, outside, non-finite
        return torch.tensor([[10., 10., 10., 40.], [20, 20, 50, 20],
                             [50, 50, 10, 10], [200, 200, 300, 300],
                             [-50, -50, -10, -10], [float('nan'), 0, 9, 9],
                             [0, 0, float('inf'), 9]]), empty
    if case == 'tiny':  # far below the smallest anchor (16 px)
        return torch.tensor([[60., 60., 61., 61.], [5, 5, 5.5, 5.5]]), empty
    if case == 'partly_outside':
        return torch.tensor([[-20., -20., 30., 30.], [100, 90, 180, 140]]), \
            empty
    if case == 'many':  # 500 valid boxes
        xy = torch.rand(500, 2, generator=g) * (SIZE - 20)
        wh = torch.rand(500, 2, generator=g) * 18 + 2
        return torch.cat([xy, xy + wh], dim=1), empty
    raise KeyError(case)


def batch(case, size=(SIZE, SIZE), num_imgs=2):
    g = torch.Generator().manual_seed(0)
    h, w = size
    ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
    inputs = torch.randn(num_imgs, 3, ph, pw, generator=g)
    samples = []
    for _ in range(num_imgs):
        boxes, ignored = boxes_of(case, g)
        sample = DetDataSample(metainfo=dict(
            img_shape=(h, w), ori_shape=(h, w), pad_shape=(ph, pw),
            batch_input_shape=(ph, pw), scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            bboxes=boxes, labels=torch.randint(0, 4, (len(boxes), ),
                                               generator=g))
        sample.ignored_instances = InstanceData(
            bboxes=ignored, labels=torch.zeros(len(ignored),
                                               dtype=torch.long))
        samples.append(sample)
    return inputs, samples


def reset_running_normalisers(model):
    """Forget the EMA of the number of positives (the module-scoped model
    has seen earlier tests' batches), so two steps share a normaliser."""
    for m in model.modules():
        if isinstance(m, ResidualObjectnessLoss) and m.avg_factor_momentum:
            m.reset_running_avg_factor()


def two_stage(model):
    return hasattr(model, 'roi_head')


def assert_finite_step(model, inputs, samples, autocast_dtype=None,
                       rpn_only=False):
    """One training step; ``rpn_only``: of a two-stage model's RPN alone."""
    model.train()
    model.zero_grad(set_to_none=True)
    with torch.autocast('cpu', dtype=autocast_dtype or torch.bfloat16,
                        enabled=autocast_dtype is not None):
        if rpn_only:
            losses = model.rpn_head.loss(model.extract_feat(inputs), samples)
        else:
            losses = model.loss(inputs, samples)
    loss, log_vars = model.parse_losses(losses)
    bad = {k: float(v) for k, v in log_vars.items() if not torch.isfinite(v)}
    assert not bad, f'non-finite losses: {bad}'
    loss.backward()
    bad = [n for n, p in model.named_parameters()
           if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f'non-finite gradients: {bad[:5]}'
    return log_vars


@pytest.mark.parametrize(
    'case', ['no_gt', 'crowd_only', 'tiny', 'partly_outside', 'many'])
def test_hostile_targets_finite(model, case):
    assert_finite_step(model, *batch(case))


def test_degenerate_boxes_dropped_with_warning(model):
    head = resobj_head(model)
    path = 'resobj_mmdet.models.dense_heads.resobj_mixin.print_log'
    # Faster R-CNN: the RPN only. mmdet's RoI head adds GT boxes as
    # proposals and mmcv's RoIAlign rejects an inverted one - vanilla and
    # ResObj alike; mmdet's CocoDataset never lets such a box through.
    rpn_only = two_stage(model)
    reset_running_normalisers(model)
    with mock.patch(path) as log:
        degenerate = assert_finite_step(
            model, *batch('degenerate'), rpn_only=rpn_only)
    assert log.call_count == 1
    message = log.call_args.args[0]
    assert 'dropped 14 GT box(es)' in message and '[7, 7]' in message
    assert log.call_args.kwargs['level'] == logging.WARNING
    # Dropped, not matched: the ResObj losses equal those of a batch with
    # no GT at all (with min_pos_iou=0, a zero-area box kept would make
    # every anchor of IoU 0 its positive).
    reset_running_normalisers(model)
    empty = assert_finite_step(model, *batch('no_gt'), rpn_only=rpn_only)
    for key, value in degenerate.items():
        if 'res' in key or key in ('loss_cls', 'loss_conf', 'loss_rpn_cls'):
            torch.testing.assert_close(value, empty[key], msg=key)
    assert head._num_degenerate_gts >= 14


def test_warning_is_throttled():
    model = build('retinanet')
    path = 'resobj_mmdet.models.dense_heads.resobj_mixin.print_log'
    inputs, samples = batch('degenerate', num_imgs=1)
    head = model.bbox_head
    feats = model.extract_feat(inputs)
    with mock.patch(path) as log:
        for _ in range(5):  # warns at batches 1, 2 and 4
            head.loss(feats, samples)
    assert log.call_count == 3


@pytest.mark.parametrize('size', [(20, 24), (33, 47)])
def test_very_small_images(model, size):
    inputs, samples = batch('partly_outside', size=size)
    for s in samples:  # keep the boxes inside the tiny image
        s.gt_instances.bboxes = torch.tensor([[2., 2., 15., 12.],
                                              [0, 0, 19, 19]])
        s.gt_instances.labels = torch.tensor([0, 1])
    assert_finite_step(model, inputs, samples)


def test_extreme_feature_magnitudes(model):
    """Head inputs scaled by 1e4 (and logits far beyond any sigmoid
    saturation) still give finite losses and gradients."""
    inputs, samples = batch('many')
    head = resobj_head(model)
    model.train()
    feats = [f.detach() * 1e4 for f in model.extract_feat(inputs)]
    for f in feats:
        f.requires_grad_()
    losses = head.loss(feats, samples)
    total = 0
    for key, value in losses.items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            assert torch.isfinite(v), key
            total = total + v
    total.backward()
    assert all(torch.isfinite(f.grad).all() for f in feats)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_cpu_autocast(model, dtype):
    inputs, samples = batch('many')
    # Faster R-CNN: the RPN only. mmcv's CPU nms is fp32-only and mmdet's
    # RPN post-processing hands it low-precision boxes: vanilla Faster R-CNN
    # fails the same way under CPU autocast (CUDA AMP is unaffected).
    try:
        log_vars = assert_finite_step(model, inputs, samples, dtype,
                                      rpn_only=two_stage(model))
    except RuntimeError as e:  # an op without a CPU kernel for this dtype,
        # or a torch whose CPU autocast is bf16-only (torch < 2.2)
        if dtype == torch.float16 and ('not implemented' in str(e) or
                                       'only support Bfloat16' in str(e)):
            pytest.skip(f'CPU fp16 autocast unsupported here: {e}')
        raise
    assert all(v.dtype == torch.float32 for v in log_vars.values())
