from functools import partial

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from resobj_mmdet.models.dense_heads import ResObjHead

IMG_METAS = [{
    'img_shape': (64, 64, 3),
    'pad_shape': (64, 64, 3),
    'scale_factor': (1.0, 1.0),
}]


def make_head(num_steps=2, detach_residual=True, **kwargs):
    cfg = dict(
        type='ResObjHead',
        num_classes=3,
        in_channels=8,
        feat_channels=8,
        stacked_convs=1,
        residual_objectness=dict(
            num_steps=num_steps, detach_residual=detach_residual),
        anchor_generator=dict(
            type='AnchorGenerator',
            octave_base_scale=4,
            scales_per_octave=1,
            ratios=[1.0],
            strides=[8, 16]),
        train_cfg=ConfigDict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.4,
                min_pos_iou=0,
                ignore_iof_thr=-1),
            sampler=dict(type='PseudoSampler'),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        test_cfg=ConfigDict(
            nms_pre=1000,
            min_bbox_size=0,
            score_thr=0.0,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=1000))
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def feats():
    torch.manual_seed(1)
    return [torch.rand(1, 8, 8, 8), torch.rand(1, 8, 4, 4)]


def gt(boxes, labels):
    inst = InstanceData()
    inst.bboxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    inst.labels = torch.tensor(labels, dtype=torch.long)
    return inst


def losses_of(head, gt_instances):
    outs = head(feats())
    return head.loss_by_feat(*outs, [gt_instances], IMG_METAS)


def total(value):
    return sum(value) if isinstance(value, (list, tuple)) else value


def test_forward_shapes():
    head = make_head(num_steps=2)
    cls_scores, bbox_preds, obj_preds = head(feats())
    assert [c.shape for c in cls_scores] == [(1, 3, 8, 8), (1, 3, 4, 4)]
    assert [b.shape for b in bbox_preds] == [(1, 4, 8, 8), (1, 4, 4, 4)]
    assert [o.shape for o in obj_preds] == [(1, 3, 8, 8), (1, 3, 4, 4)]


def test_empty_gt_semantics():
    head = make_head()
    empty = losses_of(head, gt([], []))
    # Negatives give no class and no box loss: exactly zero without GT.
    assert total(empty['loss_cls']).item() == 0
    assert total(empty['loss_bbox']).item() == 0
    assert empty['loss_obj'].item() > 0
    # No positive: the gate holds every anchor (no_pos_gate='all').
    assert empty['loss_res1'].item() > 0 and empty['loss_res2'].item() > 0

    one = losses_of(head, gt([[20.0, 20.0, 52.0, 52.0]], [1]))
    for key in ('loss_cls', 'loss_bbox', 'loss_obj', 'loss_res1',
                'loss_res2'):
        assert total(one[key]).item() > 0, key


def _grads(head, loss):
    head.zero_grad()
    loss.backward()
    return {
        name: (p.grad is not None and p.grad.abs().sum().item() > 0)
        for name, p in head.named_parameters()
    }


@pytest.mark.parametrize('detach', [True, False])
def test_gradient_isolation(detach):
    head = make_head(num_steps=2, detach_residual=detach)
    losses = losses_of(head, gt([[20.0, 20.0, 52.0, 52.0]], [1]))
    flows = _grads(head, losses['loss_res1'] + losses['loss_res2'])
    upstream = [n for n in flows
                if n.startswith(('res_obj.obj_', 'cls_convs', 'retina_cls'))]
    upstream_tower = [n for n in upstream if not n.startswith('retina_cls')]
    assert upstream_tower
    if detach:
        assert not any(flows[n] for n in upstream), \
            [n for n in upstream if flows[n]]
    else:
        assert all(flows[n] for n in upstream_tower), \
            [n for n in upstream_tower if not flows[n]]
    # Residual subnets always learn from their own loss.
    assert all(flows[n] for n in flows if n.startswith('res_obj.res_'))
    if detach:
        # Step 2's loss does not reach step 1's subnet either: block 0 of
        # the fused convs (step 1's output channels) gets no gradient,
        # block 1 does.
        losses = losses_of(head, gt([[20.0, 20.0, 52.0, 52.0]], [1]))
        head.zero_grad()
        losses['loss_res2'].backward()
        res_obj = head.res_obj
        feat, a = res_obj.feat_channels, res_obj.num_anchors
        for conv, block in ((res_obj.res_tower[0].conv, feat),
                            (res_obj.res_logit, a)):
            assert not conv.weight.grad[:block].any()
            assert conv.weight.grad[block:].abs().sum() > 0


def test_objectness_loss_reaches_class_tower():
    head = make_head()
    losses = losses_of(head, gt([[20.0, 20.0, 52.0, 52.0]], [1]))
    flows = _grads(head, losses['loss_obj'])
    assert flows['res_obj.obj_logit.weight'] and flows['cls_convs.0.conv.weight']


@pytest.mark.parametrize('via_test_cfg', [False, True])
@pytest.mark.parametrize('step', [0, 1, -1])
def test_predict_score_formula(step, via_test_cfg):
    head = make_head(num_steps=2).eval()
    kwargs = dict(step=step)
    if via_test_cfg:  # --cfg-options model.bbox_head.test_cfg.objectness_step
        head.test_cfg['objectness_step'] = step
        kwargs = {}
    with torch.no_grad():
        cls_scores, bbox_preds, obj_preds = head(feats())
        # Distinct, spread scores (the freshly initialised ones are flat).
        torch.manual_seed(3)
        cls_scores = [torch.randn_like(c) * 3 for c in cls_scores]
        obj_preds = [torch.randn_like(o) * 3 for o in obj_preds]
        results = head.predict_by_feat(
            cls_scores, bbox_preds, obj_preds, batch_img_metas=IMG_METAS,
            with_nms=False, **kwargs)[0]
    t = step % 3
    expected = []
    for c, o in zip(cls_scores, obj_preds):
        obj = o[0, :t + 1].sum(0, keepdim=True).sigmoid()  # A = 1: o_t
        expected.append((c[0].sigmoid() * obj).permute(1, 2, 0).reshape(-1))
    expected = torch.cat(expected).sort(descending=True).values
    num = 8 * 8 * 3 + 4 * 4 * 3
    assert len(results) == num
    assert results.bboxes.shape == (num, 4)
    assert results.labels.shape == (num, )
    torch.testing.assert_close(
        results.scores.sort(descending=True).values, expected,
        rtol=1e-5, atol=1e-7)


def test_predict_with_nms():
    head = make_head().eval()
    with torch.no_grad():
        results = head.predict_by_feat(
            *head(feats()), batch_img_metas=IMG_METAS, rescale=False)
    assert len(results) == 1
    assert results[0].bboxes.shape[1] == 4
    assert len(results[0]) <= 1000


def test_bad_step():
    head = make_head(num_steps=1)
    with pytest.raises(ValueError, match='step'):
        head.predict_by_feat(*head(feats()), batch_img_metas=IMG_METAS,
                             step=2)


def test_bad_objectness_step_in_test_cfg():
    head = make_head(num_steps=1)
    head.test_cfg['objectness_step'] = 2
    with pytest.raises(ValueError,
                       match=r'test_cfg\.objectness_step.*\[0, 1\].*got 2'):
        head.predict_by_feat(*head(feats()), batch_img_metas=IMG_METAS)


def test_softmax_class_loss_rejected():
    with pytest.raises(ValueError, match='loss_cls'):
        make_head(loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False))


def test_class_prior_is_one_over_k():
    head = make_head()
    p = head.retina_cls.bias.sigmoid()
    assert torch.allclose(p, torch.full_like(p, 1 / 3), atol=1e-5)


def test_registered():
    assert MODELS.get('ResObjHead') is ResObjHead


@pytest.mark.parametrize('residual_objectness, exc, field', [
    (dict(num_steps=-1), ValueError, 'num_steps'),
    (dict(num_steps=2.0), TypeError, 'num_steps'),
    (dict(residual_input='box'), ValueError, 'residual_input'),
])
def test_bad_head_config_names_field(residual_objectness, exc, field):
    with pytest.raises(exc, match=field):
        make_head(residual_objectness=residual_objectness)


def test_class_and_box_losses_once_over_all_levels():
    """One loss call over the levels equals the sum of mmdet's per-level
    calls, and a sigmoid CrossEntropyLoss expands its one-hot labels (a
    ``nonzero``: a host sync on CUDA) once instead of once per level."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from mmdet.models.dense_heads import AnchorHead
    from mmdet.models.utils import multi_apply

    from helpers import per_level_targets

    head = make_head(anchor_generator=dict(
        type='AnchorGenerator',
        octave_base_scale=4,
        scales_per_octave=1,
        ratios=[0.5, 1.0, 2.0],  # A = 3: the anchor order matters
        strides=[8, 16]))
    torch.manual_seed(3)
    feat = [torch.rand(2, 8, 8, 8), torch.rand(2, 8, 4, 4)]
    cls_scores, bbox_preds, _ = head(feat)
    metas = IMG_METAS * 2
    gts = [
        gt([[20.0, 20.0, 52.0, 52.0], [2.0, 30.0, 30.0, 44.0]], [1, 2]),
        gt([[8.0, 8.0, 40.0, 24.0]], [0])
    ]
    # mmdet's per-level targets (AnchorHead.get_targets) ...
    (anchors_l, labels_l, label_weights_l, bbox_targets_l, bbox_weights_l,
     avg) = per_level_targets(head, cls_scores, gts, metas)
    # ... are ours, concatenated over the levels.
    targets = head._anchor_targets(cls_scores, gts, metas)
    anchors, labels, label_weights, bbox_targets, bbox_weights, ours = \
        targets
    assert ours == avg
    for got, ref in ((anchors, anchors_l), (labels, labels_l),
                     (label_weights, label_weights_l),
                     (bbox_targets, bbox_targets_l),
                     (bbox_weights, bbox_weights_l)):
        torch.testing.assert_close(got, torch.cat(ref, dim=1))
    cls_weights = [
        head._positive_only(lbl, w)
        for lbl, w in zip(labels_l, label_weights_l)
    ]
    assert (torch.cat(cls_weights, 1) > 0).sum() > 1  # positives exist
    assert (label_weights > 0).sum() > (
        torch.cat(cls_weights, 1) > 0).sum()  # and negatives that train

    ref_cls, ref_bbox = multi_apply(
        partial(AnchorHead.loss_by_feat_single, head), cls_scores,
        bbox_preds, anchors_l, labels_l, cls_weights, bbox_targets_l,
        bbox_weights_l, avg_factor=avg)

    class Count(TorchDispatchMode):
        nonzero = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.nonzero += func._schema.name == 'aten::nonzero'
            return func(*args, **(kwargs or {}))

    with Count():
        loss_cls, loss_bbox = head._loss_all_levels(
            cls_scores, bbox_preds, anchors, labels, label_weights,
            bbox_targets, bbox_weights, avg)
    torch.testing.assert_close(loss_cls, sum(ref_cls))
    torch.testing.assert_close(loss_bbox, sum(ref_bbox))
    assert loss_cls > 0 and loss_bbox > 0
    assert Count.nonzero == 1  # per level: 2
    # The head's loss uses it: the same values under the same keys.
    losses = head.loss_by_feat(cls_scores, bbox_preds,
                               head(feat)[2], gts, metas)
    torch.testing.assert_close(losses['loss_cls'], sum(ref_cls))
    torch.testing.assert_close(losses['loss_bbox'], sum(ref_bbox))


def test_residual_gate_trained_hand_computed():
    # residual_gate='trained': r_t applies only where o_{t-1} reaches the
    # running threshold of S_t (logit 0 for t = 1, 1.5 for t = 2).
    head = make_head(num_steps=2).eval()
    head.res_obj.gate_logit.copy_(torch.tensor([0.0, 1.5]))
    o0 = torch.tensor([-1.0, 0.0, 1.0, 2.0])
    r1 = torch.tensor([5.0, 1.0, 1.0, -1.0])
    r2 = torch.tensor([1.0, 1.0, 1.0, 1.0])
    obj = torch.stack([o0, r1, r2]).reshape(1, 3, 2, 2)  # A = 1
    o1 = torch.tensor([-1.0, 1.0, 2.0, 1.0]).reshape(1, 1, 2, 2)
    o2 = torch.tensor([-1.0, 1.0, 3.0, 1.0]).reshape(1, 1, 2, 2)
    assert head.step_objectness([obj], 1, gate='trained')[0].equal(o1)
    assert head.step_objectness([obj], -1, gate='trained')[0].equal(o2)
    # 'all' (the default, the paper) is the cumulative sum everywhere, and
    # step 0 needs no threshold.
    assert head.step_objectness([obj])[0].equal(
        obj.reshape(1, 3, 1, 2, 2).sum(1))
    head.test_cfg['residual_gate'] = 'trained'
    assert head.step_objectness([obj])[0].equal(o2)
    head.res_obj.gate_logit.fill_(float('nan'))
    assert head.step_objectness([obj], 0)[0].equal(obj[:, :1])


def test_residual_gate_trained_needs_thresholds_and_a_known_mode():
    head = make_head(num_steps=2).eval()
    outs = head(feats())
    head.test_cfg['residual_gate'] = 'trained'
    # A fresh model (or a checkpoint from before they were kept): NaN.
    with pytest.raises(ValueError, match=r"residual_gate='trained'.*"
                       r'gate_logit'):
        head.predict_by_feat(*outs, batch_img_metas=IMG_METAS)
    head.test_cfg['residual_gate'] = 'some'
    with pytest.raises(ValueError,
                       match=r"test_cfg\.residual_gate.*'trained'.*'some'"):
        head.predict_by_feat(*outs, batch_img_metas=IMG_METAS)


def test_training_keeps_the_gate_thresholds_in_the_checkpoint():
    head = make_head(num_steps=2)
    one = gt([[20.0, 20.0, 52.0, 52.0]], [1])
    losses_of(head, one)  # by default not kept: no operator spent on them
    assert head.res_obj.gate_logit.isnan().all()
    assert 'res_obj.gate_logit' not in head.state_dict()  # no NaN saved
    head.loss_objectness.gate_momentum = 0.99
    losses_of(head, one)
    thresholds = head.res_obj.gate_logit.clone()
    assert thresholds.isfinite().all()
    state = head.state_dict()
    assert state['res_obj.gate_logit'].equal(thresholds)
    # A checkpoint from before the thresholds loads strictly, without them.
    del state['res_obj.gate_logit']
    fresh = make_head(num_steps=2)
    fresh.load_state_dict(state, strict=True)
    assert fresh.res_obj.gate_logit.isnan().all()


def test_residual_gate_trained_refuses_folded_residuals():
    # Deploy folding sums the lite residuals into o_0 for every anchor: a
    # gate can no longer be applied, and saying so beats ignoring it.
    head = make_head(residual_objectness=dict(num_steps=2, res_convs=0))
    head.res_obj.gate_logit.zero_()
    assert head.res_obj.switch_to_deploy()
    head.eval()
    outs = head(feats())
    head.predict_by_feat(*outs, batch_img_metas=IMG_METAS)  # 'all'
    head.test_cfg['residual_gate'] = 'trained'
    with pytest.raises(ValueError, match=r"residual_gate='trained'.*"
                       r'switch_to_deploy'):
        head.predict_by_feat(*outs, batch_img_metas=IMG_METAS)
