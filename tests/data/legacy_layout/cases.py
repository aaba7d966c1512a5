"""Small ResObj heads of all six families, their inputs and their outputs.

Shared by ``make_fixture.py`` (which saved ``heads.pth`` with the code of
the per-step module layout, before the residual subnets of a level were
fused) and ``tests/test_models/test_layers/test_fused_layout.py`` (which
loads those checkpoints into the current code and compares).
"""
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet.registry import MODELS

META = {
    'img_shape': (64, 64, 3),
    'pad_shape': (64, 64, 3),
    'scale_factor': (1.0, 1.0),
}
METAS = [META, META]
NMS_TEST = dict(nms_pre=1000, min_bbox_size=0, score_thr=0.0,
                max_per_img=1000)
MAX_IOU = dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4,
               min_pos_iou=0, ignore_iof_thr=-1)
DELTA = dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
             target_stds=[0.1, 0.1, 0.2, 0.2])


def _res(num_steps, lite, **kwargs):
    cfg = dict(num_steps=num_steps, **kwargs)
    if lite:
        cfg['res_convs'] = 0
    return cfg


def retinanet(num_steps, lite, **res):
    return dict(
        type='ResObjHead', num_classes=3, in_channels=4, feat_channels=4,
        stacked_convs=1, residual_objectness=_res(num_steps, lite, **res),
        anchor_generator=dict(
            type='AnchorGenerator', octave_base_scale=4, scales_per_octave=1,
            ratios=[0.5, 1.0], strides=[8, 16]),
        train_cfg=ConfigDict(assigner=MAX_IOU,
                             sampler=dict(type='PseudoSampler'),
                             allowed_border=-1, pos_weight=-1, debug=False),
        test_cfg=ConfigDict(nms=dict(type='nms', iou_threshold=0.5),
                            **NMS_TEST))


def atss(num_steps, lite):
    return dict(
        type='ResObjATSSHead', num_classes=3, in_channels=4, feat_channels=4,
        stacked_convs=1, norm_cfg=None,
        residual_objectness=_res(num_steps, lite),
        anchor_generator=dict(
            type='AnchorGenerator', ratios=[1.0], octave_base_scale=4,
            scales_per_octave=1, strides=[8, 16]),
        bbox_coder=DELTA, loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
        train_cfg=ConfigDict(assigner=dict(type='ATSSAssigner', topk=9),
                             allowed_border=-1, pos_weight=-1, debug=False),
        test_cfg=ConfigDict(nms=dict(type='nms', iou_threshold=0.6),
                            **NMS_TEST))


def ssd(num_steps, lite):
    return dict(
        type='ResObjSSDHead', num_classes=3, in_channels=(4, 4),
        residual_objectness=_res(num_steps, lite, feat_channels=4),
        anchor_generator=dict(
            type='SSDAnchorGenerator', scale_major=False, input_size=64,
            strides=[8, 16], ratios=([2], [2, 3]), min_sizes=[12, 30],
            max_sizes=[30, 60]),
        bbox_coder=DELTA,
        train_cfg=ConfigDict(
            assigner=dict(MAX_IOU, neg_iou_thr=0.5, gt_max_assign_all=False),
            sampler=dict(type='PseudoSampler'), smoothl1_beta=1.,
            allowed_border=-1, pos_weight=-1, neg_pos_ratio=None,
            debug=False),
        test_cfg=ConfigDict(nms=dict(type='nms', iou_threshold=0.45),
                            **NMS_TEST))


def yolov3(num_steps, lite):
    return dict(
        type='ResObjYOLOV3Head', num_classes=3, in_channels=[4, 4],
        out_channels=[4, 4],
        anchor_generator=dict(
            type='YOLOAnchorGenerator',
            base_sizes=[[(32, 32), (48, 48)], [(12, 12), (20, 20)]],
            strides=[16, 8]),
        featmap_strides=[16, 8],
        residual_objectness=_res(num_steps, lite),
        loss_conf=dict(type='ResidualObjectnessLoss', reduction='sum'),
        train_cfg=ConfigDict(assigner=dict(
            type='GridAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
            min_pos_iou=0)),
        test_cfg=ConfigDict(conf_thr=0.0,
                            nms=dict(type='nms', iou_threshold=0.45),
                            **NMS_TEST))


def rpn(num_steps, lite):
    return dict(
        type='ResObjRPNHead', in_channels=4, feat_channels=4,
        residual_objectness=_res(
            num_steps, lite,
            norm_cfg=dict(type='GN', num_groups=4, requires_grad=True)),
        anchor_generator=dict(type='AnchorGenerator', scales=[4],
                              ratios=[0.5, 1.0, 2.0], strides=[8, 16]),
        bbox_coder=dict(DELTA, target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0),
        train_cfg=ConfigDict(
            assigner=dict(MAX_IOU, pos_iou_thr=0.7, neg_iou_thr=0.3,
                          min_pos_iou=0.3),
            sampler=dict(type='PseudoSampler'), allowed_border=-1,
            pos_weight=-1, debug=False),
        test_cfg=ConfigDict(nms_pre=1000, max_per_img=1000,
                            nms=dict(type='nms', iou_threshold=0.7),
                            min_bbox_size=0))


def yolox(num_steps, lite):
    return dict(
        type='ResObjYOLOXHead', num_classes=3, in_channels=4,
        feat_channels=4, stacked_convs=1, strides=(8, 16),
        residual_objectness=_res(num_steps, lite),
        train_cfg=ConfigDict(
            assigner=dict(type='SimOTAAssigner', center_radius=2.5)),
        test_cfg=ConfigDict(score_thr=0.0,
                            nms=dict(type='nms', iou_threshold=0.65)))


FAMILIES = dict(retinanet=retinanet, atss=atss, ssd=ssd, yolov3=yolov3,
                rpn=rpn, yolox=yolox)
# Every family at T = 0..3 and lite at T = 2; RetinaNet also lite at T = 1
# and 3, with BN subnets, and with the 'class' and 'chain' inputs.
CASES = {f'{family}-T{t}': (family, t, False, {})
         for family in FAMILIES for t in range(4)}
CASES.update({f'{family}-T2-lite': (family, 2, True, {})
              for family in FAMILIES})
CASES.update({
    'retinanet-T1-lite': ('retinanet', 1, True, {}),
    'retinanet-T3-lite': ('retinanet', 3, True, {}),
    'retinanet-T2-bn': ('retinanet', 2, False,
                        dict(norm_cfg=dict(type='BN'))),
    'retinanet-T2-class': ('retinanet', 2, False,
                           dict(residual_input='class')),
    'retinanet-T2-class-lite': ('retinanet', 2, True,
                                dict(residual_input='class')),
    'retinanet-T2-chain': ('retinanet', 2, False,
                           dict(residual_input='chain')),
    'retinanet-T2-flow': ('retinanet', 2, False,
                          dict(detach_residual=False)),
})


def build(name):
    family, num_steps, lite, res = CASES[name]
    cfg = FAMILIES[family](num_steps, lite, **res) if res else \
        FAMILIES[family](num_steps, lite)
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    head.init_weights()
    # Non-trivial residual biases and norm statistics: the initialised
    # residual logits are zero-biased and BN's running stats are 0/1.
    with torch.no_grad():
        for n, p in head.named_parameters():
            if '.bias' in n or '.weight' in n and p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.1)
        for n, b in head.named_buffers():
            if 'running_mean' in n:
                b.copy_(torch.randn_like(b) * 0.1)
            elif 'running_var' in n:
                b.copy_(1 + torch.rand_like(b))
    return head


def inputs(name):
    """Features (two images, two levels) and ground truth."""
    family = CASES[name][0]
    torch.manual_seed(1)
    if family == 'yolov3':  # coarse level first, as YOLOv3's neck gives
        feats = [torch.rand(2, 4, 4, 4), torch.rand(2, 4, 8, 8)]
    else:
        feats = [torch.rand(2, 4, 8, 8), torch.rand(2, 4, 4, 4)]
    gts = []
    for boxes, labels in (([[4., 6., 30., 28.], [30., 30., 60., 62.],
                            [40., 2., 52., 14.]], [0, 1, 2]),
                          ([[10., 10., 42., 50.]], [1])):
        inst = InstanceData()
        inst.bboxes = torch.tensor(boxes)
        inst.labels = torch.tensor(labels)
        gts.append(inst)
    return feats, gts


def run(head, name):
    """Losses, parameter gradients and predictions of ``head``.

    Returns:
        dict: ``losses`` (name -> float tensor), ``grads`` (parameter name
        -> tensor), ``obj_outs`` (the objectness outputs ``[o_0, r_1..r_T]``
        per level) and ``preds`` (per image the 30 best bboxes, scores and
        labels at the last step and at step 0).
    """
    feats, gts = inputs(name)
    head.train()
    head.zero_grad()
    outs = head(feats)
    losses = head.loss_by_feat(*outs, gts, METAS)
    total = sum(sum(v) if isinstance(v, (list, tuple)) else v
                for v in losses.values())
    total.backward()
    grads = {n: p.grad.clone() for n, p in head.named_parameters()
             if p.grad is not None}
    head.eval()
    with torch.no_grad():
        outs = head(feats)
        preds = {}
        for step in (-1, 0):
            res = head.predict_by_feat(*outs, batch_img_metas=METAS,
                                       rescale=False, step=step)
            preds[step] = [
                dict(bboxes=r.bboxes[:30].clone(),
                     scores=r.scores[:30].clone(),
                     labels=r.labels[:30].clone()) for r in res]
    return dict(
        losses={k: (sum(v) if isinstance(v, (list, tuple)) else v).detach()
                for k, v in losses.items()},
        grads=grads,
        obj_outs=[o.detach().clone() for o in outs[-1]],
        preds=preds)


def flatten(tree, prefix=''):
    """Nested dicts/lists of tensors -> {dotted path: tensor}."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree)
    flat = {}
    for key, value in items:
        path = f'{prefix}{key}'
        if isinstance(value, torch.Tensor):
            flat[path] = value
        else:
            flat.update(flatten(value, path + '/'))
    return flat


def pack(flat):
    """{name: tensor} -> one float32 tensor and its index (a checkpoint of
    many tiny tensors is mostly per-tensor overhead; every value here is
    a float32 or a small integer, so the round trip is exact)."""
    index = [(k, tuple(v.shape), str(v.dtype).split('.')[-1])
             for k, v in flat.items()]
    data = torch.cat([v.detach().float().reshape(-1)
                      for v in flat.values()]) if flat else torch.zeros(0)
    return dict(index=index, data=data)


def unpack(packed):
    """The inverse of :func:`pack`."""
    out, start = {}, 0
    for name, shape, dtype in packed['index']:
        n = 1
        for s in shape:
            n *= s
        out[name] = packed['data'][start:start + n].reshape(shape).to(
            getattr(torch, dtype))
        start += n
    return out
