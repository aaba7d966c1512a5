# RetinaNet-ResObj (T = 2) on Aquarium in the short recipe of
# retinanet_mobilenetv2_fpn_384-12e_aquarium.py: the head of
# configs/resobj/resobj-retinanet_r50_fpn_1x_coco.py (focal loss replaced
# by imbalance transfer + residual objectness), the same model, data and
# mmdet SGD recipe, without gradient clipping.
_base_ = './retinanet_mobilenetv2_fpn_384-12e_aquarium.py'
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
