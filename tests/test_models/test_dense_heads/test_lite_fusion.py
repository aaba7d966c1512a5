"""Deploy-time fusion of lite ResObj detectors, at the detector level."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from helpers import REPO
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample

DEMO = osp.join(REPO, 'configs', 'demo')


def _lite(name, head):
    cfg = Config.fromfile(osp.join(DEMO, name))
    cfg.model[head].residual_objectness.res_convs = 0
    test_cfg = cfg.model.test_cfg
    test_cfg.score_thr = 0.0  # keep every box: many scores to compare
    if 'conf_thr' in test_cfg:
        test_cfg.conf_thr = 0.0
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    # Spread the residual logits so that folding them is not trivially 0.
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in getattr(model, head).modules():
            if type(m).__name__ == 'ResidualObjectness':
                conv = m.res_logit
                conv.weight.copy_(
                    torch.randn(conv.weight.shape, generator=g) * 0.05)
                conv.bias.copy_(torch.randn(conv.bias.shape, generator=g))
    return model.eval()


def _samples(n, size):
    return [DetDataSample(metainfo=dict(
        img_shape=size, ori_shape=size, pad_shape=size,
        batch_input_shape=size, scale_factor=(1.0, 1.0))) for _ in range(n)]


@pytest.mark.parametrize('name,head,folded_convs', [
    ('resobj-retinanet_r18-w16_fpn_12e_shapes.py', 'bbox_head', 1),
    ('resobj-yolov3_r18-w16_12e_shapes.py', 'bbox_head', 0),
])
def test_folded_lite_detector_predicts_the_same(name, head, folded_convs):
    model = _lite(name, head)
    fused = copy.deepcopy(model)
    folded = [n for n, m in fused.named_modules()
              if hasattr(m, 'switch_to_deploy') and m.switch_to_deploy()]
    assert folded

    def convs(m):
        return sum(isinstance(c, torch.nn.Conv2d) for c in m.modules())

    # RetinaNet: the fused residual logit conv folds into the objectness
    # logit conv; YOLOv3 (o_0 from the host): it stays one conv per level,
    # with A outputs instead of T * A.
    assert convs(model) - convs(fused) == folded_convs
    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = model.predict(x, _samples(2, (128, 128)))
        out = fused.predict(x, _samples(2, (128, 128)))
    for a, b in zip(ref, out):
        a, b = a.pred_instances, b.pred_instances
        assert len(a) == len(b) > 10
        torch.testing.assert_close(b.scores, a.scores, rtol=1e-4, atol=1e-5)
        # Equal scores may come out in either order: match each detection to
        # one of the same label and score, by box.
        same = ((b.scores[:, None] - a.scores[None]).abs() <= 1e-5) & \
            (b.labels[:, None] == a.labels[None])
        box_diff = (b.bboxes[:, None] - a.bboxes[None]).abs().amax(-1)
        box_diff[~same] = float('inf')
        assert box_diff.amin(1).max() <= 1e-3
