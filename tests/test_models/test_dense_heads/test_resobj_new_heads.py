"""ResObjATSSHead, ResObjSSDHead, ResObjYOLOXHead: the shared core on three
more mmdet heads."""
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
}] * 2
SSD_ANCHORS = dict(
    type='SSDAnchorGenerator',
    scale_major=False,
    input_size=64,
    strides=[8, 16, 32],
    ratios=([2], [2, 3], [2]),
    min_sizes=[8, 20, 40],
    max_sizes=[20, 40, 64])
TEST_CFG = ConfigDict(
    nms_pre=1000,
    min_bbox_size=0,
    score_thr=0.0,
    nms=dict(type='nms', iou_threshold=0.6),
    max_per_img=1000)


def atss_head(num_steps=2, **kwargs):
    cfg = dict(
        type='ResObjATSSHead',
        num_classes=3,
        in_channels=8,
        feat_channels=8,
        stacked_convs=1,
        norm_cfg=None,
        residual_objectness=dict(num_steps=num_steps),
        anchor_generator=dict(
            type='AnchorGenerator',
            ratios=[1.0],
            octave_base_scale=4,
            scales_per_octave=1,
            strides=[8, 16, 32]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
        train_cfg=ConfigDict(
            assigner=dict(type='ATSSAssigner', topk=9),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        test_cfg=TEST_CFG)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def ssd_head(num_steps=2, **kwargs):
    cfg = dict(
        type='ResObjSSDHead',
        num_classes=3,
        in_channels=(8, 8, 8),
        residual_objectness=dict(num_steps=num_steps, feat_channels=8),
        anchor_generator=SSD_ANCHORS,
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[0.1, 0.1, 0.2, 0.2]),
        train_cfg=ConfigDict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.5,
                min_pos_iou=0.,
                ignore_iof_thr=-1,
                gt_max_assign_all=False),
            sampler=dict(type='PseudoSampler'),
            smoothl1_beta=1.,
            allowed_border=-1,
            pos_weight=-1,
            neg_pos_ratio=None,
            debug=False),
        test_cfg=TEST_CFG)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def yolox_head(num_steps=2, type='ResObjYOLOXHead'):
    cfg = dict(
        type=type,
        num_classes=3,
        in_channels=8,
        feat_channels=8,
        stacked_convs=1,
        strides=(8, 16, 32),
        train_cfg=ConfigDict(
            assigner=dict(type='SimOTAAssigner', center_radius=2.5)),
        test_cfg=ConfigDict(
            score_thr=0.0, nms=dict(type='nms', iou_threshold=0.65)))
    if type == 'ResObjYOLOXHead':
        cfg['residual_objectness'] = dict(num_steps=num_steps)
    return MODELS.build(cfg)


BUILDERS = dict(atss=atss_head, ssd=ssd_head, yolox=yolox_head)


def feats():
    torch.manual_seed(1)
    return [torch.rand(2, 8, s, s) for s in (8, 4, 2)]


def gt(boxes, labels):
    inst = InstanceData()
    inst.bboxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    inst.labels = torch.tensor(labels, dtype=torch.long)
    return inst


def total(value):
    return sum(value) if isinstance(value, (list, tuple)) else value


def losses_of(head, gts):
    return head.loss_by_feat(*head(feats()), gts, IMG_METAS)


ONE = [[12.0, 12.0, 44.0, 40.0]]
OBJ_KEYS = ('loss_obj', 'loss_res1', 'loss_res2')


@pytest.mark.parametrize('name', ['atss', 'ssd', 'yolox'])
def test_empty_gt_semantics(name):
    head = BUILDERS[name]()
    head.init_weights()
    empty = losses_of(head, [gt([], []), gt([], [])])
    others = [k for k in empty if k not in OBJ_KEYS]
    assert 'loss_cls' in others and 'loss_bbox' in others
    for key in others:  # class, box (and centerness / L1): exactly 0
        assert total(empty[key]).item() == 0, key
    for key in OBJ_KEYS:  # background still trains the objectness
        assert empty[key].item() > 0, key
    one = losses_of(head, [gt(ONE, [1]), gt(ONE, [2])])
    for key in one:
        if key == 'loss_l1':
            continue  # YOLOX's L1 loss is off until its mode switch
        assert total(one[key]).item() > 0, key


@pytest.mark.parametrize('name', ['atss', 'ssd', 'yolox'])
def test_gradient_isolation(name):
    head = BUILDERS[name]()
    head.init_weights()
    losses = losses_of(head, [gt(ONE, [1]), gt(ONE, [2])])
    head.zero_grad()
    (losses['loss_res1'] + losses['loss_res2']).backward()
    flows = {n: p.grad is not None and p.grad.abs().sum().item() > 0
             for n, p in head.named_parameters()}
    res = [n for n in flows if '.res_tower.' in n or '.res_logit.' in n]
    assert res and all(flows[n] for n in res)
    # Nothing outside the residual subnets learns from residual losses.
    assert not [n for n in flows if flows[n] and n not in res]


def test_yolox_t0_is_vanilla_yolox():
    """Same weights -> same maps, losses and predictions."""
    torch.manual_seed(0)
    ours = yolox_head(num_steps=0)
    ours.init_weights()
    vanilla = yolox_head(type='YOLOXHead')
    state = {k: v for k, v in ours.state_dict().items()
             if not k.startswith('res_objs')}
    vanilla.load_state_dict(state, strict=True)
    gts = [gt(ONE, [1]), gt([[4.0, 30.0, 20.0, 60.0]], [0])]
    a = ours.loss_by_feat(*ours(feats()), gts, IMG_METAS)
    b = vanilla.loss_by_feat(*vanilla(feats()), gts, IMG_METAS)
    assert set(a) == set(b)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    ours.eval()
    vanilla.eval()
    with torch.no_grad():
        ra = ours.predict_by_feat(*ours(feats()), batch_img_metas=IMG_METAS)
        rb = vanilla.predict_by_feat(*vanilla(feats()),
                                     batch_img_metas=IMG_METAS)
    for x, y in zip(ra, rb):
        torch.testing.assert_close(x.scores, y.scores)
        torch.testing.assert_close(x.bboxes, y.bboxes)


def test_yolox_points_and_objectness_shapes():
    head = yolox_head(num_steps=2)
    cls_scores, bbox_preds, obj_preds = head(feats())
    # One point prior per location: [o_0, r_1, r_2] in 3 channels.
    assert [o.shape for o in obj_preds] == [(2, 3, 8, 8), (2, 3, 4, 4),
                                            (2, 3, 2, 2)]


def test_ssd_has_no_mining_and_refuses_it():
    head = ssd_head()
    head.init_weights()
    # Every negative anchor is in the objectness loss: with no GT it equals
    # BCE(o_0, 0) summed over all anchors, divided by mmdet's avg_factor
    # (its SamplingResult counts at least one positive per image: 2).
    losses = losses_of(head, [gt([], []), gt([], [])])
    obj = torch.cat([
        o[:, :o.size(1) // 3].reshape(-1) for o in head(feats())[2]
    ])
    expected = torch.nn.functional.softplus(obj).sum() / 2 * \
        head.loss_objectness.loss_weight
    torch.testing.assert_close(losses['loss_obj'], expected)
    with pytest.raises(ValueError, match='neg_pos_ratio'):
        ssd_head(train_cfg=dict(neg_pos_ratio=3))
    with pytest.raises(ValueError, match='loss_cls'):
        ssd_head(loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False))


def test_ssd_levels_have_their_own_anchor_counts():
    head = ssd_head()
    head.init_weights()
    _, _, obj_preds = head(feats())
    # 4, 6, 4 anchors per location; T + 1 = 3 blocks.
    assert [o.size(1) for o in obj_preds] == [12, 18, 12]
    p = head.cls_convs[0][-1].bias.sigmoid()
    torch.testing.assert_close(p, torch.full_like(p, 1 / 3))


@pytest.mark.parametrize('name', ['atss', 'ssd'])
def test_predict_score_formula(name):
    head = BUILDERS[name]().eval()
    with torch.no_grad():
        outs = list(head(feats()))
        torch.manual_seed(3)
        outs = [[torch.randn_like(x) * 2 for x in level] for level in outs]
        # Zero deltas: boxes are the anchors, none dropped as degenerate.
        outs[1] = [torch.zeros_like(x) for x in outs[1]]
        results = head.predict_by_feat(
            *outs, batch_img_metas=IMG_METAS[:1], with_nms=False)[0]
    cls_scores, obj_preds = outs[0], outs[-1]
    expected = []
    for lvl, (c, o) in enumerate(zip(cls_scores, obj_preds)):
        a = o.size(1) // 3
        obj = o[0].reshape(3, a, *o.shape[-2:]).sum(0).sigmoid()  # o_T
        score = c[0].reshape(a, 3, *c.shape[-2:]).sigmoid() * obj[:, None]
        if name == 'atss':  # centerness multiplies the joint score
            score = score * outs[2][lvl][0].sigmoid()[:, None]
        expected.append(score.permute(2, 3, 0, 1).reshape(-1))
    expected = torch.cat(expected).sort(descending=True).values
    got = results.scores.sort(descending=True).values
    torch.testing.assert_close(got, expected[:len(got)], rtol=1e-5,
                               atol=1e-7)


@pytest.mark.parametrize('name', ['atss', 'ssd', 'yolox'])
def test_degenerate_boxes_are_dropped(name):
    head = BUILDERS[name]()
    head.init_weights()
    bad = gt([[30.0, 30.0, 30.0, 50.0], [float('nan'), 0, 10, 10]], [0, 1])
    clean = losses_of(head, [gt([], []), gt([], [])])
    dirty = losses_of(head, [bad, gt([], [])])
    for key in clean:
        torch.testing.assert_close(total(dirty[key]), total(clean[key]))


def test_atss_and_ssd_losses_are_the_per_level_sums():
    """The class / box / centerness losses run once over all levels (see
    ``ResObjMixin._loss_all_levels``) and equal mmdet's per-level losses
    summed; SSD has 4, 6 and 4 anchors per location on its levels."""
    from functools import partial

    from mmdet.models.dense_heads import AnchorHead, ATSSHead
    from mmdet.models.utils import multi_apply

    from helpers import per_level_targets
    gts = [gt(ONE, [1]), gt([[4.0, 30.0, 20.0, 60.0], [30, 2, 60, 30]],
                            [0, 2])]

    head = ssd_head()
    head.init_weights()
    cls_scores, bbox_preds, obj_preds = head(feats())
    anchors, labels, label_w, bbox_t, bbox_w, avg = per_level_targets(
        head, cls_scores, gts, IMG_METAS)
    ref_cls, ref_bbox = multi_apply(
        partial(AnchorHead.loss_by_feat_single, head), cls_scores,
        bbox_preds, anchors, labels,
        [head._positive_only(lbl, w) for lbl, w in zip(labels, label_w)],
        bbox_t, bbox_w, avg_factor=avg)
    losses = head.loss_by_feat(cls_scores, bbox_preds, obj_preds, gts,
                               IMG_METAS)
    assert sum(ref_cls) > 0 and sum(ref_bbox) > 0
    torch.testing.assert_close(losses['loss_cls'], sum(ref_cls))
    torch.testing.assert_close(losses['loss_bbox'], sum(ref_bbox))

    head = atss_head()
    head.init_weights()
    cls_scores, bbox_preds, centernesses, obj_preds = head(feats())
    anchor_list, valid = head.get_anchors(
        [c.shape[-2:] for c in cls_scores], IMG_METAS, device='cpu')
    anchor_list, labels, label_w, bbox_t, _, avg = head.get_targets(
        anchor_list, valid, gts, IMG_METAS)
    ref_cls, ref_bbox, ref_ctr, ref_bbox_avg = multi_apply(
        partial(ATSSHead.loss_by_feat_single, head), anchor_list,
        cls_scores, bbox_preds, centernesses, labels,
        [head._positive_only(lbl, w) for lbl, w in zip(labels, label_w)],
        bbox_t, avg_factor=float(avg))
    losses = head.loss_by_feat(cls_scores, bbox_preds, centernesses,
                               obj_preds, gts, IMG_METAS)
    assert sum(ref_cls) > 0 and sum(ref_ctr) > 0
    torch.testing.assert_close(losses['loss_cls'], sum(ref_cls))
    torch.testing.assert_close(losses['loss_bbox'],
                               sum(ref_bbox) / sum(ref_bbox_avg).clamp(min=1))
    torch.testing.assert_close(losses['loss_centerness'], sum(ref_ctr))


@pytest.mark.parametrize('name', ['atss', 'ssd', 'yolox'])
def test_residual_gate_trained_on_every_head(name):
    # Every head's training keeps the thresholds, and residual_gate is an
    # inference setting that training ignores (YOLOX's SimOTA reads o_T).
    head = BUILDERS[name]()
    head.init_weights()
    for loss in head.modules():  # keep the thresholds
        if type(loss).__name__ == 'ResidualObjectnessLoss':
            loss.gate_momentum = 0.99
    head.test_cfg = copy.deepcopy(head.test_cfg)  # TEST_CFG is shared
    head.test_cfg['residual_gate'] = 'trained'
    thresholds = head.residual_objectness_modules[0].gate_logit
    assert thresholds.isnan().all()
    losses_of(head, [gt(ONE, [1]), gt(ONE, [2])])
    assert thresholds.isfinite().all()
    head.eval()
    with torch.no_grad():
        outs = head(feats())
        gated = head.predict_by_feat(*outs, batch_img_metas=IMG_METAS)
        head.test_cfg['residual_gate'] = 'all'
        every = head.predict_by_feat(*outs, batch_img_metas=IMG_METAS)
    assert len(gated) == len(every) == 2
    assert all(len(g) > 0 for g in gated)
