# ATSS-ResObj, T = 2 (not in the paper): ATSS's focal loss replaced by
# imbalance transfer + residual objectness, as RetinaNet-ResObj replaces
# RetinaNet's. ATSS's assigner, GIoU loss and centerness stay; the score is
# sigmoid(cls) * sigmoid(o_T) * centerness (see ResObjATSSHead).
# --tta: mmdet's RetinaNet TTA (flip x 1333x800, 666x400, 2000x1200), the
# same test scale as ATSS's, merged with ATSS's NMS (below).
_base_ = [
    'mmdet::atss/atss_r50_fpn_1x_coco.py', 'mmdet::retinanet/retinanet_tta.py'
]
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        type='ResObjATSSHead',
        residual_objectness=dict(type='ResidualObjectness', num_steps=2),
        loss_objectness=dict(type='ResidualObjectnessLoss'),
        loss_cls=dict(
            _delete_=True,
            type='CrossEntropyLoss',
            use_sigmoid=True,
            loss_weight=1.0)))

tta_model = dict(tta_cfg=dict(nms=dict(iou_threshold=0.6)))
