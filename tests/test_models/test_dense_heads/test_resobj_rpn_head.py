import copy

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet.registry import MODELS

IMG_METAS = [{
    'img_shape': (64, 64, 3),
    'pad_shape': (64, 64, 3),
    'scale_factor': (1.0, 1.0),
}]


def train_cfg(sampler=dict(type='PseudoSampler')):
    cfg = dict(
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.7,
            neg_iou_thr=0.3,
            min_pos_iou=0.3,
            ignore_iof_thr=-1),
        allowed_border=-1,
        pos_weight=-1,
        debug=False)
    if sampler is not None:
        cfg['sampler'] = sampler
    return ConfigDict(cfg)


TEST_CFG = ConfigDict(
    nms_pre=1000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7),
    min_bbox_size=0)


def make_head(num_steps=2, sampler=dict(type='PseudoSampler'), **kwargs):
    cfg = dict(
        type='ResObjRPNHead',
        in_channels=8,
        feat_channels=8,
        residual_objectness=dict(
            num_steps=num_steps,
            norm_cfg=dict(type='GN', num_groups=4, requires_grad=True)),
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[4],
            ratios=[0.5, 1.0, 2.0],
            strides=[4, 8]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0),
        train_cfg=train_cfg(sampler),
        test_cfg=TEST_CFG)
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def feats():
    torch.manual_seed(1)
    return [torch.rand(1, 8, 16, 16), torch.rand(1, 8, 8, 8)]


def gt(boxes):
    inst = InstanceData()
    inst.bboxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    inst.labels = torch.zeros(len(inst.bboxes), dtype=torch.long)
    return inst


def total(v):
    return sum(v) if isinstance(v, (list, tuple)) else v


def test_forward_and_init():
    head = make_head()
    cls, bbox, obj = head(feats())
    assert [c.shape for c in cls] == [(1, 3, 16, 16), (1, 3, 8, 8)]
    assert [o.shape for o in obj] == [(1, 9, 16, 16), (1, 9, 8, 8)]
    assert torch.equal(obj[0][:, :3], cls[0])  # o_0 is rpn_cls
    # o_0 starts from the objectness prior, not mmdet's zero bias.
    assert torch.allclose(head.rpn_cls.bias.sigmoid(),
                          torch.full((3, ), 0.01), atol=1e-6)


def test_empty_gt_semantics():
    head = make_head()
    outs = head(feats())
    empty = head.loss_by_feat(*outs, [gt([])], IMG_METAS)
    assert total(empty['loss_rpn_bbox']).item() == 0
    for key in ('loss_rpn_cls', 'loss_rpn_res1', 'loss_rpn_res2'):
        assert empty[key].item() > 0, key
    one = head.loss_by_feat(*outs, [gt([[10.0, 10.0, 30.0, 30.0]])],
                            IMG_METAS)
    for key in ('loss_rpn_cls', 'loss_rpn_res1', 'loss_rpn_res2',
                'loss_rpn_bbox'):
        assert total(one[key]).item() > 0, key


@pytest.mark.parametrize('per_image', [256, None])
def test_objectness_loss_covers_all_anchors(per_image):
    """No sampling: BCE over every anchor, normalised like mmdet's RPN
    (256 per image) or, with ``avg_factor_per_image=None``, by num_pos."""
    import torch.nn.functional as F
    from resobj_mmdet.models.layers import flatten_objectness
    head = make_head(num_steps=0, avg_factor_per_image=per_image)
    outs = head(feats())
    gts = [gt([[10.0, 10.0, 30.0, 30.0]])]
    losses = head.loss_by_feat(*outs, gts, IMG_METAS)
    (_, labels, weights, _, _, num_pos) = head._anchor_targets(
        outs[0], gts, IMG_METAS)
    assert int(weights.sum()) > 0.9 * weights.numel()  # ~every anchor
    o0 = flatten_objectness(outs[2], 0)[:, 0]
    norm = 256 if per_image else max(num_pos, 1)
    exp = F.binary_cross_entropy_with_logits(
        o0, (labels == 0).float(), weights, reduction='sum') / norm
    torch.testing.assert_close(losses['loss_rpn_cls'], exp)


@pytest.mark.parametrize('value', [0, -256, 2.5, True])
def test_bad_avg_factor_per_image(value):
    with pytest.raises(ValueError, match='avg_factor_per_image'):
        make_head(avg_factor_per_image=value)


def test_proposals_ranked_by_last_step():
    head = make_head(num_steps=2).eval()
    with torch.no_grad():
        cls, bbox, obj = head(feats())
        torch.manual_seed(5)
        # Residuals that reorder the anchors relative to o_0.
        obj = [torch.cat([o[:, :3], torch.randn_like(o[:, 3:]) * 4], 1)
               for o in obj]
        props = head.predict_by_feat(cls, bbox, obj, IMG_METAS)[0]
        props0 = head.predict_by_feat(cls, bbox, obj, IMG_METAS, step=0)[0]
    assert props.bboxes.shape[1] == 4 and props.scores.dim() == 1
    assert len(props) <= 1000
    o_t = torch.cat([(o[0, :3] + o[0, 3:6] + o[0, 6:]).permute(
        1, 2, 0).reshape(-1) for o in obj]).sigmoid()
    # Proposals are sorted by sigmoid(o_T), and the best one is the best
    # anchor under o_T, not under o_0.
    assert torch.all(props.scores[:-1] >= props.scores[1:])
    torch.testing.assert_close(props.scores[0], o_t.max())
    assert not torch.allclose(props.scores[0], props0.scores[0])


@pytest.mark.parametrize('sampler', [
    dict(type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1,
         add_gt_as_proposals=False),
    dict(type='OHEMSampler', num=256, pos_fraction=0.5)
])
def test_sampler_rejected(sampler):
    with pytest.raises(ValueError, match='train_cfg.rpn.sampler'):
        make_head(sampler=sampler)


def test_no_sampler_is_pseudo():
    head = make_head(sampler=None)
    assert type(head.sampler).__name__ == 'PseudoSampler'


@pytest.mark.parametrize('num_steps, exc', [(-2, ValueError),
                                            (None, TypeError)])
def test_bad_num_steps(num_steps, exc):
    with pytest.raises(exc, match='num_steps'):
        make_head(num_steps=num_steps)


def test_box_loss_is_the_per_level_sum():
    """``loss_rpn_bbox`` runs once over all levels and equals the sum of
    the per-level box losses."""
    head = make_head()
    outs = head(feats())
    gts = [gt([[20.0, 20.0, 52.0, 52.0], [2.0, 30.0, 30.0, 44.0]])]
    from helpers import per_level_targets
    anchors, _, _, bbox_t, bbox_w, _ = per_level_targets(
        head, outs[0], gts, IMG_METAS)
    avg = head.avg_factor_per_image * len(IMG_METAS)
    ref = [
        head._loss_bbox_single(*args, avg_factor=avg)
        for args in zip(outs[1], anchors, bbox_t, bbox_w)
    ]
    losses = head.loss_by_feat(*outs, gts, IMG_METAS)
    assert sum(ref) > 0
    torch.testing.assert_close(losses['loss_rpn_bbox'], sum(ref))


def test_residual_gate_is_read_from_the_predicting_config():
    # Like objectness_step: training's proposals (train_cfg.rpn_proposal,
    # no residual_gate) rank with every residual even when the test config
    # asks for 'trained', so a model without thresholds yet still trains.
    head = make_head(num_steps=2).eval()
    head.test_cfg = copy.deepcopy(head.test_cfg)
    head.test_cfg['residual_gate'] = 'trained'
    proposal_cfg = copy.deepcopy(head.test_cfg)
    del proposal_cfg['residual_gate']
    with torch.no_grad():
        outs = head(feats())
        props = head.predict_by_feat(*outs, IMG_METAS, cfg=proposal_cfg)[0]
        assert len(props) > 0
        with pytest.raises(ValueError, match='gate_logit'):
            head.predict_by_feat(*outs, IMG_METAS)
        # With thresholds far below every anchor, 'trained' is 'all'.
        head.residual_objectness_modules[0].gate_logit.fill_(-1e4)
        gated = head.predict_by_feat(*outs, IMG_METAS)[0]
    torch.testing.assert_close(gated.scores, props.scores)
