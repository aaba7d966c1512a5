# RetinaNet-ResObj (T = 2) on the embedded shapes dataset: the vanilla demo
# with the head difference of configs/resobj/resobj-retinanet_r50_fpn_1x_coco.py.
_base_ = './retinanet_r18-w16_fpn_12e_shapes.py'
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        type='ResObjHead',
        residual_objectness=dict(type='ResidualObjectness', num_steps=2),
        loss_objectness=dict(type='ResidualObjectnessLoss'),
        loss_cls=dict(
            _delete_=True,
            type='CrossEntropyLoss',
            use_sigmoid=True,
            loss_weight=1.0)))
