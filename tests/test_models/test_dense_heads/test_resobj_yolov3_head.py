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
TRAIN_CFG = ConfigDict(
    assigner=dict(
        type='GridAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
        min_pos_iou=0))
TEST_CFG = ConfigDict(
    nms_pre=1000,
    min_bbox_size=0,
    score_thr=0.0,
    conf_thr=0.005,
    nms=dict(type='nms', iou_threshold=0.45),
    max_per_img=100)
ANCHORS = dict(
    type='YOLOAnchorGenerator',
    base_sizes=[[(32, 32), (48, 48)], [(12, 12), (20, 20)]],
    strides=[16, 8])


def head_cfg(resobj=True, num_steps=2, reduction='sum', **kwargs):
    cfg = dict(
        type='ResObjYOLOV3Head' if resobj else 'YOLOV3Head',
        num_classes=3,
        in_channels=[8, 4],
        out_channels=[16, 8],
        anchor_generator=ANCHORS,
        featmap_strides=[16, 8],
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True,
                      reduction=reduction),
        loss_xy=dict(type='CrossEntropyLoss', use_sigmoid=True,
                     loss_weight=2.0, reduction=reduction),
        loss_wh=dict(type='MSELoss', loss_weight=2.0, reduction=reduction),
        train_cfg=TRAIN_CFG,
        test_cfg=TEST_CFG)
    if resobj:
        cfg.update(
            residual_objectness=dict(num_steps=num_steps),
            loss_conf=dict(type='ResidualObjectnessLoss',
                           reduction=reduction))
    else:
        cfg.update(loss_conf=dict(type='CrossEntropyLoss', use_sigmoid=True,
                                  reduction=reduction))
    cfg.update(kwargs)
    return cfg


def build(**kwargs):
    torch.manual_seed(0)
    head = MODELS.build(head_cfg(**kwargs))
    head.init_weights()
    return head


def feats():
    torch.manual_seed(1)
    return (torch.rand(1, 8, 4, 4), torch.rand(1, 4, 8, 8))


def gt(boxes, labels):
    inst = InstanceData()
    inst.bboxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    inst.labels = torch.tensor(labels, dtype=torch.long)
    return inst


# Centre (32, 32) sits on a cell corner: the 48x48 anchor of the cell
# left-above it has IoU 0.53 but is not responsible -> YOLOv3 ignores it.
ONE_GT = [[8.0, 8.0, 56.0, 56.0]]


def total(v):
    return sum(v) if isinstance(v, (list, tuple)) else v


def test_forward_shapes():
    head = build(num_steps=2)
    pred_maps, obj_preds = head(feats())
    assert [p.shape for p in pred_maps] == [(1, 16, 4, 4), (1, 16, 8, 8)]
    assert [o.shape for o in obj_preds] == [(1, 6, 4, 4), (1, 6, 8, 8)]
    # o_0 is YOLOv3's own confidence channel.
    conf = pred_maps[0].view(1, 2, 8, 4, 4)[:, :, 4]
    assert torch.equal(obj_preds[0][:, :2], conf)


@pytest.mark.parametrize('reduction', ['sum', 'mean'])
def test_t0_is_vanilla_yolov3(reduction):
    vanilla = build(resobj=False, reduction=reduction)
    resobj = MODELS.build(head_cfg(num_steps=0, reduction=reduction))
    resobj.load_state_dict(vanilla.state_dict(), strict=True)
    x = feats()
    (v_maps, ), (r_maps, r_obj) = vanilla(x), resobj(x)
    for a, b in zip(v_maps, r_maps):
        assert torch.equal(a, b)
    gts = [gt(ONE_GT, [1])]
    v_loss = vanilla.loss_by_feat(v_maps, gts, IMG_METAS)
    r_loss = resobj.loss_by_feat(r_maps, r_obj, gts, IMG_METAS)
    assert set(r_loss) == set(v_loss)
    for key in v_loss:
        torch.testing.assert_close(total(r_loss[key]), total(v_loss[key]))
    with torch.no_grad():
        v_pred = vanilla.predict_by_feat(v_maps, batch_img_metas=IMG_METAS)[0]
        r_pred = resobj.predict_by_feat(r_maps, r_obj,
                                        batch_img_metas=IMG_METAS)[0]
    assert len(v_pred) > 0
    for key in ('bboxes', 'scores', 'labels'):
        assert torch.equal(getattr(v_pred, key), getattr(r_pred, key))


def test_empty_gt_semantics():
    head = build()
    maps, obj = head(feats())
    empty = head.loss_by_feat(maps, obj, [gt([], [])], IMG_METAS)
    for key in ('loss_cls', 'loss_xy', 'loss_wh'):
        assert total(empty[key]).item() == 0, key
    for key in ('loss_conf', 'loss_res1', 'loss_res2'):
        assert empty[key].item() > 0, key
    one = head.loss_by_feat(maps, obj, [gt(ONE_GT, [1])], IMG_METAS)
    for key in ('loss_cls', 'loss_xy', 'loss_wh', 'loss_conf', 'loss_res1',
                'loss_res2'):
        assert total(one[key]).item() > 0, key


def test_ignored_anchors_never_enter_the_gate():
    from resobj_mmdet.models.layers import flatten_objectness
    from resobj_mmdet.models.losses import refine_objectness
    head = build(num_steps=1)
    maps, obj = head(feats())
    gts = [gt(ONE_GT, [1])]
    featmap_sizes = [m.shape[-2:] for m in maps]
    anchors = head.prior_generator.grid_priors(featmap_sizes, device='cpu')
    flags = head.responsible_flags(featmap_sizes, gts[0].bboxes, 'cpu')
    targets, negs = head.get_targets([anchors], [flags], gts)
    pos = torch.cat([t[..., 4] for t in targets], 1)
    neg = torch.cat([n.float() for n in negs], 1)
    ignored = (pos == 0) & (neg == 0)
    assert ignored.any(), 'the case needs an anchor in the ignore band'
    logits = flatten_objectness(obj, 1).detach().clone()
    logits[ignored[:, None].expand_as(logits)] = 50.0  # would top the gate
    _, gates = refine_objectness(logits, pos, (pos + neg).clamp(max=1))
    assert not gates[ignored[:, None].expand_as(gates)].any()
    assert gates[(pos > 0)[:, None].expand_as(gates)].all()
    # The head's loss uses exactly these weights: changing the ignored
    # anchors' logits does not change any objectness loss.
    obj_hot = [o.detach().clone() for o in obj]
    base = head.loss_by_feat(maps, obj_hot, gts, IMG_METAS)
    hot = []
    start = 0
    for o in obj_hot:
        n, c, h, w = o.shape
        m = ignored[:, start:start + h * w * 2].reshape(n, h, w, 2).permute(
            0, 3, 1, 2)
        o = o.clone()
        o[:, :2][m] = 50.0
        o[:, 2:][m] = 50.0
        hot.append(o)
        start += h * w * 2
    changed = head.loss_by_feat(maps, hot, gts, IMG_METAS)
    for key in ('loss_conf', 'loss_res1'):
        torch.testing.assert_close(changed[key], base[key])


def _flows(head, loss):
    head.zero_grad()
    loss.backward()
    return {n: p.grad is not None and p.grad.abs().sum().item() > 0
            for n, p in head.named_parameters()}


@pytest.mark.parametrize('detach', [True, False])
def test_gradient_isolation(detach):
    head = MODELS.build(head_cfg(
        residual_objectness=dict(num_steps=2, detach_residual=detach)))
    head.init_weights()
    maps, obj = head(feats())
    losses = head.loss_by_feat(maps, obj, [gt(ONE_GT, [1])], IMG_METAS)
    flows = _flows(head, losses['loss_res1'] + losses['loss_res2'])
    upstream = [n for n in flows if n.startswith(('convs_bridge',
                                                  'convs_pred'))]
    assert any(flows[n] for n in upstream) != detach
    # The positive is on level 0 (stride 16): its residual subnets learn.
    # Level 1 starts with a lower objectness prior (YOLOv3's init), so none of
    # its anchors reaches the image's weakest positive: its gate is empty.
    assert all(flows[n] for n in flows if n.startswith('res_objs.0.'))
    assert not any(flows[n] for n in flows if n.startswith('res_objs.1.'))


def test_predict_uses_last_step():
    head = build(num_steps=1).eval()
    with torch.no_grad():
        maps, obj = head(feats())
        obj = [o.clone() for o in obj]
        for o in obj:
            o[:, 2:] = -20.0  # o_1 rejects everything below conf_thr
        last = head.predict_by_feat(maps, obj, IMG_METAS)[0]
        first = head.predict_by_feat(maps, obj, IMG_METAS, step=0)[0]
        head.test_cfg['objectness_step'] = 0
        from_cfg = head.predict_by_feat(maps, obj, IMG_METAS)[0]
    assert len(last) == 0 and len(first) > 0
    torch.testing.assert_close(from_cfg.scores, first.scores)
    torch.testing.assert_close(from_cfg.bboxes, first.bboxes)


def test_bad_loss_conf():
    with pytest.raises(ValueError, match='loss_conf'):
        MODELS.build(head_cfg(loss_conf=dict(type='CrossEntropyLoss',
                                             use_sigmoid=True)))


@pytest.mark.parametrize('steps, exc', [(-1, ValueError), ('2', TypeError)])
def test_bad_num_steps(steps, exc):
    with pytest.raises(exc, match='num_steps'):
        MODELS.build(head_cfg(residual_objectness=dict(num_steps=steps)))
